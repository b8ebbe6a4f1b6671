from django.contrib import admin

from .models import Article, Event, Post

admin.site.register(Post)
admin.site.register(Article)
admin.site.register(Event)
