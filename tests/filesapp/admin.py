from django.contrib import admin

from .models import Attachment, Profile

admin.site.register(Attachment)
admin.site.register(Profile)
