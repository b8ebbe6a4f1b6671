"""A view that streams files out of a storage such as ``GridFSStorage``.

``path("files/<path:path>", serve, {"storage": grid_fs_storage})`` serves
what ``grid_fs_storage.url(name)`` points at when the storage's ``base_url``
is ``"/files/"``. The file is sent chunk by chunk, never read whole.
"""

from __future__ import annotations

import mimetypes
import posixpath

from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import Storage
from django.http import FileResponse, Http404, HttpRequest
from django.utils.http import http_date
from django.views.decorators.http import require_safe


@require_safe
def serve(request: HttpRequest, path: str, storage: Storage) -> FileResponse:
    try:
        file = storage.open(path, "rb")
    except (FileNotFoundError, SuspiciousFileOperation) as exc:
        raise Http404(f"No file {path!r}.") from exc
    content_type = getattr(file, "content_type", None) or mimetypes.guess_type(path)[0]
    response = FileResponse(
        file, content_type=content_type or "application/octet-stream",
        filename=posixpath.basename(path),
    )
    upload_date = getattr(file, "upload_date", None)
    if upload_date is not None:
        response.headers["Last-Modified"] = http_date(upload_date.timestamp())
    return response
