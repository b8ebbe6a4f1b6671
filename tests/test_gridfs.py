"""GridFSStorage: Django's FileField and ImageField with the files in MongoDB's GridFS."""

import hashlib
import io
import os
import re
import tracemalloc
from datetime import UTC, datetime

import gridfs
import pytest
from django.core.exceptions import SuspiciousFileOperation
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.db.migrations.writer import MigrationWriter
from djongo.storage import GridFSStorage
from PIL import Image

from tests.filesapp.models import Attachment, Profile, documents, grid_fs_storage

MiB = 1024 * 1024


def png(width=3, height=2, color="red"):
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def committed_storage(transactional_db):
    """A storage outside any transaction (autocommit), its buckets dropped afterwards."""
    storage = GridFSStorage(collection="scratch")
    yield storage
    db = connection.mongo_database
    for name in db.list_collection_names():
        if name.startswith("scratch."):
            db.drop_collection(name)


# -- the example from Djongo's documentation ------------------------------------------


@pytest.mark.django_db
def test_spec_example_image_field_round_trip(mongo_db):
    image = png(5, 4)
    profile = Profile.objects.create(name="ada", avatar=ContentFile(image, name="avatar.png"))

    stored = mongo_db["myfiles.files"].find_one({"filename": "avatar.png"})
    assert stored["length"] == len(image)
    assert stored["metadata"] == {"contentType": "image/png"}

    profile = Profile.objects.get(pk=profile.pk)
    assert profile.avatar.name == "avatar.png"
    with profile.avatar.open() as f:
        assert f.read() == image
    # ImageField reads the dimensions back through the storage.
    assert (profile.avatar.width, profile.avatar.height) == (5, 4)
    assert profile.avatar.size == len(image)


@pytest.mark.django_db
def test_the_same_name_twice_gives_a_second_name():
    first = grid_fs_storage.save("note.txt", ContentFile(b"one"))
    second = grid_fs_storage.save("note.txt", ContentFile(b"two"))
    assert first == "note.txt"
    assert re.fullmatch(r"note_[A-Za-z0-9]{7}\.txt", second)
    assert grid_fs_storage.open(first).read() == b"one"
    assert grid_fs_storage.open(second).read() == b"two"


@pytest.mark.django_db
def test_exists_size_delete():
    name = documents.save("reports/2025/q1.csv", ContentFile("a,b\n1,2\n"))
    assert name == "reports/2025/q1.csv"
    assert documents.exists(name)
    assert not documents.exists("reports/2025/q2.csv")
    assert documents.size(name) == 8
    with documents.open(name, "r") as text:
        assert text.read() == "a,b\n1,2\n"
    documents.delete(name)
    assert not documents.exists(name)
    documents.delete(name)  # deleting a missing file is not an error, as on a file system
    with pytest.raises(FileNotFoundError):
        documents.open(name)
    with pytest.raises(FileNotFoundError):
        documents.size(name)


@pytest.mark.django_db
def test_times_are_the_upload_time():
    before = datetime.now(UTC).replace(microsecond=0)
    name = documents.save("t.txt", ContentFile(b"x"))
    modified = documents.get_modified_time(name)
    assert modified.tzinfo is not None  # USE_TZ = True: aware, as FileSystemStorage's
    assert before <= modified <= datetime.now(UTC)
    assert documents.get_created_time(name) == modified


@pytest.mark.django_db
def test_a_rolled_back_transaction_takes_the_file_with_it():
    with pytest.raises(RuntimeError), transaction.atomic():
        draft = Attachment.objects.create(title="draft", upload=ContentFile(b"x", name="d.txt"))
        name = draft.upload.name
        assert documents.exists(name)
        raise RuntimeError
    assert not Attachment.objects.exists()
    assert not documents.exists(name)


def test_names_are_checked():
    with pytest.raises(SuspiciousFileOperation):
        documents.exists("../outside.txt")


@pytest.mark.django_db
def test_directories_cannot_contain_dots():
    with pytest.raises(SuspiciousFileOperation, match="cannot contain '.'"):
        documents.save("v1.2/notes.txt", ContentFile(b"x"))


def test_url_joins_base_url_and_name(settings):
    assert documents.url("reports/2025/a b.pdf") == "/files/reports/2025/a%20b.pdf"
    # Without base_url, MEDIA_URL, as for FileSystemStorage.
    settings.MEDIA_URL = "/media/"
    assert grid_fs_storage.url("avatar.png") == "/media/avatar.png"
    settings.MEDIA_URL = None
    with pytest.raises(ValueError, match="not accessible via a URL"):
        grid_fs_storage.url("avatar.png")


def test_the_storage_is_serialized_into_migrations():
    storage = GridFSStorage(collection="myfiles", base_url="/files/")
    assert storage.deconstruct() == (
        "djongo.storage.GridFSStorage", (), {"collection": "myfiles", "base_url": "/files/"})
    source, imports = MigrationWriter.serialize(storage)
    assert source == "djongo.storage.GridFSStorage(base_url='/files/', collection='myfiles')"
    assert imports == {"import djongo.storage"}


# -- large files -----------------------------------------------------------------------


def test_a_large_file_is_streamed_both_ways(committed_storage, tmp_path):
    size = 12 * MiB + 12345
    source = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with source.open("wb") as f:
        for _ in range(size // MiB):
            block = os.urandom(MiB)
            digest.update(block)
            f.write(block)
        tail = os.urandom(size % MiB)
        digest.update(tail)
        f.write(tail)
    expected = digest.hexdigest()

    tracemalloc.start()
    try:
        with source.open("rb") as f:
            name = committed_storage.save("big/big.bin", File(f))
        _, saving_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()

        read = hashlib.sha256()
        pieces = 0
        with committed_storage.open(name) as stored:
            assert stored.size == size
            for piece in stored.chunks(64 * 1024):
                read.update(piece)
                pieces += 1
        _, reading_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert read.hexdigest() == expected
    assert pieces == -(-size // (64 * 1024))
    # Neither side ever holds the 12 MiB file: a few chunks of 255 KiB at most.
    assert saving_peak < 4 * MiB, saving_peak
    assert reading_peak < 4 * MiB, reading_peak

    with committed_storage.open(name) as stored, source.open("rb") as original:
        for offset in (0, 255 * 1024 - 3, 5 * MiB + 7, size - 10):
            stored.seek(offset)
            original.seek(offset)
            assert stored.read(1000) == original.read(1000)
        stored.seek(0, io.SEEK_END)
        assert stored.read() == b""


# -- directories, and files written by others -----------------------------------------------


def test_listdir(committed_storage):
    for name in ("top.txt", "a/one.txt", "a/two.txt", "a/b/deep.txt", "c/d/deeper.txt"):
        committed_storage.save(name, ContentFile(name.encode()))
    assert committed_storage.listdir("") == (["a", "c"], ["top.txt"])
    assert committed_storage.listdir("a") == (["b"], ["one.txt", "two.txt"])
    assert committed_storage.listdir("a/b") == ([], ["deep.txt"])
    assert committed_storage.listdir("c") == (["d"], [])
    assert committed_storage.listdir("nowhere") == ([], [])


def test_files_are_stored_in_gridfs_layout_both_ways(committed_storage):
    """pymongo's GridFSBucket (so mongofiles, and Djongo's files) and the storage agree."""
    db = connection.mongo_database
    name = committed_storage.save("reports/r.txt", ContentFile(b"from django" * 50000))
    bucket = gridfs.GridFSBucket(db, "scratch.reports")
    assert bucket.open_download_stream_by_name("r.txt").read() == b"from django" * 50000

    # A file written the way the original Djongo wrote it (legacy GridFS API,
    # contentType at the top level), in the bucket of its directory.
    legacy = gridfs.GridFS(db, "scratch.reports")
    legacy.put(b"from djongo", filename="old.txt", contentType="text/plain")
    with committed_storage.open("reports/old.txt") as f:
        assert f.read() == b"from djongo"
        assert f.content_type == "text/plain"
    assert committed_storage.listdir("reports") == ([], ["old.txt", "r.txt"])
    assert name == "reports/r.txt"


# -- through views and the admin -------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.urls("tests.filesapp.urls")
def test_upload_and_download_through_a_view(client):
    data = b"%PDF-1.4 " + os.urandom(600 * 1024)
    response = client.post("/upload/", {
        "title": "Q1", "upload": SimpleUploadedFile("q1 report.pdf", data, "application/pdf"),
    })
    assert response.status_code == 302
    attachment = Attachment.objects.get(title="Q1")
    year = datetime.now().year
    assert attachment.upload.name == f"reports/{year}/q1_report.pdf"
    assert response["Location"] == f"/files/reports/{year}/q1_report.pdf"

    download = client.get(response["Location"])
    assert download.status_code == 200
    assert download["Content-Type"] == "application/pdf"
    assert download["Content-Length"] == str(len(data))
    assert b"".join(download.streaming_content) == data
    assert client.get("/files/reports/missing.pdf").status_code == 404


@pytest.mark.django_db
@pytest.mark.urls("tests.filesapp.urls")
def test_upload_and_download_through_the_admin(admin_client, settings):
    settings.MEDIA_URL = "/media/"
    image = png(7, 3)
    response = admin_client.post("/admin/filesapp/profile/add/", {
        "name": "grace", "avatar": SimpleUploadedFile("grace.png", image, "image/png"),
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    profile = Profile.objects.get(name="grace")
    assert profile.avatar.name == "grace.png"

    change_page = admin_client.get(f"/admin/filesapp/profile/{profile.pk}/change/")
    assert change_page.status_code == 200
    link = re.search(r'href="(/media/[^"]+)"', change_page.content.decode()).group(1)
    assert link == "/media/grace.png"
    download = admin_client.get(link)
    assert download["Content-Type"] == "image/png"
    assert b"".join(download.streaming_content) == image

    # Replacing the file in the admin stores the new one under a free name.
    response = admin_client.post(f"/admin/filesapp/profile/{profile.pk}/change/", {
        "name": "grace", "avatar": SimpleUploadedFile("grace.png", png(2, 2), "image/png"),
    })
    assert response.status_code == 302
    profile.refresh_from_db()
    assert profile.avatar.name != "grace.png"
    assert (profile.avatar.width, profile.avatar.height) == (2, 2)
