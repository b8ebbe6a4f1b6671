from django.contrib import admin

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
