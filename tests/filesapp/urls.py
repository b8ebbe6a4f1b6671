from django.contrib import admin
from django.http import HttpResponseBadRequest, HttpResponseRedirect
from django.urls import path
from djongo.views import serve

from .forms import AttachmentForm
from .models import documents, grid_fs_storage


def upload(request):
    """A plain upload view: a ModelForm with a FileField, as a site would write it."""
    form = AttachmentForm(request.POST, request.FILES)
    if not form.is_valid():
        return HttpResponseBadRequest(form.errors.as_json())
    attachment = form.save()
    return HttpResponseRedirect(attachment.upload.url)


urlpatterns = [
    path("admin/", admin.site.urls),
    path("upload/", upload),
    path("files/<path:path>", serve, {"storage": documents}),
    path("media/<path:path>", serve, {"storage": grid_fs_storage}),
]
