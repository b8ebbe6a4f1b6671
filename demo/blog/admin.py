from django.contrib import admin
from django.db.models import Q
from djongo.models import TextSearch

from .models import Author, Entry


@admin.register(Author)
class AuthorAdmin(admin.ModelAdmin):
    list_display = ("name", "email")
    search_fields = ("name", "email")
    ordering = ("name",)


@admin.register(Entry)
class EntryAdmin(admin.ModelAdmin):
    list_display = ("headline", "author", "pub_date", "n_comments")
    search_fields = ("headline",)
    list_filter = ("pub_date",)
    ordering = ("-pub_date",)
    list_per_page = 5

    def get_search_results(self, request, queryset, search_term):
        """Entries whose headline contains the term (the admin's own search), or
        whose headline or text match its words by MongoDB's full-text search:
        stemmed, so "diary" finds the "Mongo Diaries" entries."""
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if search_term.strip():
            by_text = queryset.filter(TextSearch(search_term)).values("pk")
            found = queryset.filter(Q(pk__in=found.values("pk")) | Q(pk__in=by_text))
        return found, may_have_duplicates
