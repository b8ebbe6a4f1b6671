"""``GridFSStorage``: Django file storage in MongoDB's GridFS.

``avatar = models.ImageField(storage=GridFSStorage(collection='myfiles'))``
keeps the uploaded files in the same MongoDB database as the rows, in
GridFS's standard layout: a ``<bucket>.files`` document per file and its
content in 255 KiB ``<bucket>.chunks`` documents, so pymongo's
``GridFSBucket``, ``mongofiles`` and the original Djongo read these files and
this storage reads theirs.

As in the original Djongo, a directory is a bucket of its own: ``a/b/c.txt``
in ``GridFSStorage(collection='myfiles')`` is the file ``c.txt`` of the bucket
``myfiles.a.b``. Directory names therefore cannot contain dots.

The chunks are written here rather than through pymongo's ``GridFSBucket``
because that class refuses to run inside a multi-document transaction, and a
file field is saved inside one whenever the model is (``transaction.atomic()``,
the admin, ``ATOMIC_REQUESTS``). Inside a transaction the file belongs to it:
a rollback removes it together with the row that named it.
"""

from __future__ import annotations

import io
import mimetypes
import posixpath
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

from bson import ObjectId
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, SuspiciousFileOperation
from django.core.files import File
from django.core.files.storage import Storage
from django.core.files.utils import validate_file_name
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone
from django.utils.deconstruct import deconstructible
from django.utils.encoding import filepath_to_uri
from gridfs.errors import CorruptGridFile
from pymongo import ASCENDING, DESCENDING
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.database import Database

__all__ = ["GridFSFile", "GridFSStorage"]

# GridFS's own default: 255 KiB keeps a chunk and its BSON framing under
# 256 KiB, so chunks pack well into the server's pages.
DEFAULT_CHUNK_SIZE = 255 * 1024
# Chunks sent per insert: bounds the memory a save holds (about 1 MiB) while
# saving round trips on large files.
CHUNKS_PER_INSERT = 4

_FILES_INDEX = [("filename", ASCENDING), ("uploadDate", ASCENDING)]
_CHUNKS_INDEX = [("files_id", ASCENDING), ("n", ASCENDING)]
_LATEST = [("uploadDate", DESCENDING), ("_id", DESCENDING)]


@deconstructible(path="djongo.storage.GridFSStorage")
class GridFSStorage(Storage):
    """Files in GridFS, in the database of the Django connection ``database``.

    ``location`` is a directory prefixed to every name (as for Django's
    ``FileSystemStorage``); ``collection`` names the root bucket;
    ``base_url`` is where :func:`djongo.views.serve` (or any server reading
    GridFS by file name) is routed, ``MEDIA_URL`` when not given.
    """

    def __init__(
        self,
        location: str = "",
        collection: str = "storage",
        database: str = DEFAULT_DB_ALIAS,
        base_url: str | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        if not collection:
            raise ImproperlyConfigured("GridFSStorage: 'collection' may not be empty.")
        if "$" in collection or "\x00" in collection or collection.startswith(("system.", ".")):
            raise ImproperlyConfigured(
                f"GridFSStorage: {collection!r} is not a valid MongoDB collection name."
            )
        if chunk_size <= 0:
            raise ImproperlyConfigured("GridFSStorage: 'chunk_size' must be positive.")
        self.location = location.strip("/")
        self.collection = collection
        self.database = database
        self._base_url = base_url
        self.chunk_size = chunk_size
        # Buckets whose indexes are known to exist (committed), per database.
        self._indexed: set[tuple[str, str]] = set()

    # -- where a name lives ---------------------------------------------------

    def _bucket(self, directory: str) -> str:
        parts = [self.collection, *self.location.split("/"), *directory.split("/")]
        return ".".join(p for p in parts if p and p != ".")

    def _split(self, name: str) -> tuple[str, str]:
        """The bucket and the GridFS file name that ``name`` is stored as."""
        validate_file_name(name, allow_relative_path=True)
        directory, filename = posixpath.split(posixpath.normpath(str(name).replace("\\", "/")))
        return self._bucket(directory), filename

    def _connection(self) -> tuple[Database, ClientSession | None]:
        """The database, and the session of the connection's open transaction if any."""
        wrapper = connections[self.database]
        if wrapper.vendor != "djongo":
            raise ImproperlyConfigured(
                f"GridFSStorage needs a djongo database; DATABASES[{self.database!r}] "
                f"uses {wrapper.display_name}."
            )
        database = wrapper.mongo_database
        return database, wrapper.connection.session_for_statement()

    def _latest(self, name: str) -> tuple[Database, str, Mapping[str, Any], ClientSession | None]:
        bucket, filename = self._split(name)
        db, session = self._connection()
        doc = db[f"{bucket}.files"].find_one({"filename": filename}, sort=_LATEST,
                                              session=session)
        if doc is None:
            raise FileNotFoundError(f"No file {name!r} in GridFS bucket {bucket!r}.")
        return db, bucket, doc, session

    # -- Storage API ----------------------------------------------------------

    def _open(self, name: str, mode: str = "rb") -> GridFSFile:
        if set(mode) - {"r", "b", "t"}:
            raise ValueError(
                f"GridFSStorage opens files for reading only (mode {mode!r}); "
                "save() writes them."
            )
        db, bucket, doc, session = self._latest(name)
        return GridFSFile(db[f"{bucket}.chunks"], doc, session, name, mode)

    def _save(self, name: str, content: File) -> str:
        bucket, filename = self._split(name)
        directory = posixpath.dirname(posixpath.normpath(name))
        if "." in directory.replace("/", ""):
            raise SuspiciousFileOperation(
                f"GridFSStorage stores the directory of {name!r} as a collection name; "
                "directory names cannot contain '.'."
            )
        db, session = self._connection()
        self._ensure_indexes(db, bucket, session)
        files, chunks = db[f"{bucket}.files"], db[f"{bucket}.chunks"]
        file_id = ObjectId()
        length = 0
        try:
            batch: list[dict[str, Any]] = []
            for n, data in enumerate(_rechunk(content, self.chunk_size)):
                length += len(data)
                batch.append({"files_id": file_id, "n": n, "data": data})
                if len(batch) == CHUNKS_PER_INSERT:
                    chunks.insert_many(batch, session=session)
                    batch = []
            if batch:
                chunks.insert_many(batch, session=session)
            doc: dict[str, Any] = {
                "_id": file_id,
                "length": length,
                "chunkSize": self.chunk_size,
                # GridFS dates are BSON datetimes: milliseconds, UTC.
                "uploadDate": _now_ms(),
                "filename": filename,
            }
            content_type = getattr(content, "content_type", None) or mimetypes.guess_type(
                filename)[0]
            if content_type:
                doc["metadata"] = {"contentType": content_type}
            files.insert_one(doc, session=session)
        except BaseException:
            # Outside a transaction, chunks already written would be orphans.
            if session is None:
                chunks.delete_many({"files_id": file_id})
            raise
        return str(name).replace("\\", "/")

    def _ensure_indexes(self, db: Database, bucket: str, session: ClientSession | None) -> None:
        """Creates GridFS's two indexes on a bucket that lacks them.

        ``listIndexes`` and ``listCollections`` cannot run inside a
        transaction on MongoDB, and a transaction may only create indexes on
        a collection it creates, so inside one a bucket that exists without
        its indexes is left for a later save in autocommit.
        """
        key = (db.name, bucket)
        if key in self._indexed:
            return
        complete = True
        for suffix, index, unique in (("files", _FILES_INDEX, False),
                                      ("chunks", _CHUNKS_INDEX, True)):
            collection = db[f"{bucket}.{suffix}"]
            existing = [dict(spec["key"]) for spec in collection.list_indexes()]
            if dict(index) in existing:
                continue
            exists = bool(db.list_collection_names(filter={"name": collection.name}))
            if session is not None and exists:
                complete = False
                continue
            collection.create_index(index, unique=unique, session=session)
            if session is not None:
                complete = False
        if complete:
            self._indexed.add(key)

    def delete(self, name: str) -> None:
        if not name:
            raise ValueError("The name must be given to delete().")
        bucket, filename = self._split(name)
        db, session = self._connection()
        files = db[f"{bucket}.files"]
        # Every revision goes: exists() must then be False.
        ids = [d["_id"] for d in files.find({"filename": filename}, {"_id": 1}, session=session)]
        if ids:
            db[f"{bucket}.chunks"].delete_many({"files_id": {"$in": ids}}, session=session)
            files.delete_many({"_id": {"$in": ids}}, session=session)

    def exists(self, name: str) -> bool:
        bucket, filename = self._split(name)
        db, session = self._connection()
        return db[f"{bucket}.files"].find_one(
            {"filename": filename}, {"_id": 1}, session=session) is not None

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        path = posixpath.normpath(path.replace("\\", "/")) if path else ""
        if path not in ("", "."):
            validate_file_name(path, allow_relative_path=True)
        bucket = self._bucket(path)
        db, session = self._connection()
        files = sorted(db[f"{bucket}.files"].distinct("filename", session=session))
        # A sub-directory is any bucket below this one; listCollections sees
        # committed collections only (MongoDB refuses it in a transaction).
        prefix = bucket + "."
        directories = set()
        for collection in db.list_collection_names():
            if not collection.startswith(prefix):
                continue
            below, _, suffix = collection[len(prefix):].rpartition(".")
            if below and suffix in ("files", "chunks"):
                directories.add(below.split(".", 1)[0])
        return sorted(directories), files

    def size(self, name: str) -> int:
        return int(self._latest(name)[2]["length"])

    def url(self, name: str | None) -> str:
        base_url = self.base_url
        if base_url is None:
            raise ValueError("This file is not accessible via a URL.")
        url = filepath_to_uri(name)
        if url is not None:
            url = url.lstrip("/")
        return urljoin(base_url, url)

    @property
    def base_url(self) -> str | None:
        base_url = self._base_url if self._base_url is not None else settings.MEDIA_URL
        if base_url and not base_url.endswith("/"):
            base_url += "/"
        return base_url

    def get_created_time(self, name: str) -> datetime:
        return _as_setting_time(self._latest(name)[2]["uploadDate"])

    def get_modified_time(self, name: str) -> datetime:
        # GridFS files are never modified in place: a new upload is a new file.
        return _as_setting_time(self._latest(name)[2]["uploadDate"])


class GridFSFile(File):
    """A stored file, opened for reading; its content is fetched chunk by chunk."""

    def __init__(self, chunks: Collection, doc: Mapping[str, Any],
                 session: ClientSession | None, name: str, mode: str = "rb") -> None:
        self._chunks = chunks
        self._doc = doc
        self._session = session
        super().__init__(self._stream(mode), name)
        self.mode = mode
        self.file_id: Any = doc["_id"]
        metadata = doc.get("metadata") or {}
        # pymongo's legacy GridFS API (the original Djongo's) kept it at the top level.
        self.content_type: str | None = metadata.get("contentType") or doc.get("contentType")
        self.upload_date: datetime = _as_setting_time(doc["uploadDate"])
        self._size = int(doc["length"])

    @property
    def size(self) -> int:
        return self._size

    def _stream(self, mode: str) -> io.IOBase:
        reader = GridFSReader(self._chunks, self._doc, self._session)
        return reader if "b" in mode else io.TextIOWrapper(reader, encoding="utf-8")

    def open(self, mode: str | None = None, *args: Any, **kwargs: Any) -> GridFSFile:
        # FieldFile.open() reopens the file it opened before (ImageField does
        # so to read the dimensions); File.open() only knows file-system paths.
        if self.closed or (mode is not None and mode != self.mode):
            self.mode = mode or self.mode
            self.file = self._stream(self.mode)
        else:
            self.seek(0)
        return self


class GridFSReader(io.BufferedIOBase):
    """A seekable binary stream over one GridFS file; holds one chunk at a time."""

    def __init__(self, chunks: Collection, doc: Mapping[str, Any],
                 session: ClientSession | None) -> None:
        super().__init__()
        self._chunks = chunks
        self._session = session
        self._file_id = doc["_id"]
        self.size = int(doc["length"])
        self._chunk_size = int(doc["chunkSize"])
        self._position = 0
        self._cached: tuple[int, memoryview] | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            position = offset
        elif whence == io.SEEK_CUR:
            position = self._position + offset
        elif whence == io.SEEK_END:
            position = self.size + offset
        else:
            raise ValueError(f"invalid whence ({whence})")
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        self._position = position
        return position

    def read1(self, size: int | None = -1) -> bytes:
        """At most ``size`` bytes from the current chunk (one round trip at most)."""
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        if self._position >= self.size or size == 0:
            return b""
        n, offset = divmod(self._position, self._chunk_size)
        data = self._chunk(n)
        end = len(data) if size is None or size < 0 else min(len(data), offset + size)
        self._position += end - offset
        return bytes(data[offset:end])

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = max(self.size - self._position, 0)
        parts = []
        while size > 0 and (part := self.read1(size)):
            parts.append(part)
            size -= len(part)
        return b"".join(parts)

    def _chunk(self, n: int) -> memoryview:
        if self._cached is None or self._cached[0] != n:
            doc = self._chunks.find_one({"files_id": self._file_id, "n": n},
                                        session=self._session)
            expected = min(self._chunk_size, self.size - n * self._chunk_size)
            if doc is None:
                raise CorruptGridFile(f"GridFS file {self._file_id}: chunk {n} is missing")
            data = bytes(doc["data"])
            if len(data) != expected:
                raise CorruptGridFile(
                    f"GridFS file {self._file_id}: chunk {n} holds {len(data)} bytes, "
                    f"expected {expected}"
                )
            self._cached = (n, memoryview(data))
        return self._cached[1]


def _rechunk(content: File, size: int) -> Iterator[bytes]:
    """``content`` in pieces of exactly ``size`` bytes (the last may be shorter).

    ``File.chunks`` yields what each ``read`` returned, which for pipes and
    some uploads is less than asked; GridFS needs every chunk but the last full.
    """
    pending = bytearray()
    for piece in content.chunks(size):
        pending += piece.encode() if isinstance(piece, str) else piece
        while len(pending) >= size:
            yield bytes(pending[:size])
            del pending[:size]
    if pending:
        yield bytes(pending)


def _now_ms() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _as_setting_time(value: datetime) -> datetime:
    """A BSON datetime (UTC) as Django's other storages return times."""
    if timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    return value if settings.USE_TZ else timezone.make_naive(value)
