"""Which MongoDB server a settings block talks to, and the shared clients.

The rule (also in README.md):

* ``CLIENT`` (or Django's ``HOST``) in the settings: that server, through
  ``pymongo.MongoClient(**CLIENT)``. Nothing is started.
* Neither: the embedded engine, storing its files in ``DATA_DIR`` (default:
  ``<BASE_DIR>/djongo-data``, or ``./djongo-data`` when the settings have no
  ``BASE_DIR``). Every process with that ``DATA_DIR`` shares the store
  through its server's owner-only socket (``djongo.store``).

Djongo used to fall back to ``localhost:27017`` when ``CLIENT`` was absent.
A user relying on that must not land silently on a new, empty embedded
database: when the embedded data directory does not exist yet and something
answers on ``localhost:27017``, connecting fails with ``ImproperlyConfigured``
and says how to choose. Either way the backend logs, at connect time, which
server and which database it uses.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pymongo
from bson import json_util
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from pymongo import MongoClient, monitoring
from pymongo.errors import PyMongoError

from . import _core, database, store

logger = logging.getLogger("djongo")
command_logger = logging.getLogger("djongo.mongo")

LEGACY_DEFAULT_HOST = ("localhost", 27017)
#: How long an operation on the embedded store waits for its server, e.g.
#: while a new one takes over from one that died.
STORE_SELECTION_TIMEOUT_MS = 15_000
#: While joining, how long a ``hello`` waits before this process looks again
#: whether anyone still serves the store.
JOIN_POLL_SECONDS = 0.5

_clients: dict[str, MongoClient] = {}
_stores: dict[str, _core.StoreClient] = {}
_clients_lock = threading.Lock()

#: ``DJONGO_EMBEDDED_CLIENT=pymongo`` sends the ORM's statements to the
#: embedded store through pymongo instead of its own client (for comparing
#: the two; the default is the store's client).
EMBEDDED_CLIENT_ENV = "DJONGO_EMBEDDED_CLIENT"


@dataclass(frozen=True)
class ServerChoice:
    """Where a settings block's data lives."""

    embedded: bool
    client_kwargs: dict[str, Any]
    data_dir: Path | None
    description: str
    #: ``STORE_SERVER: "in-process"``: when no process serves the embedded
    #: store, this one serves it itself rather than starting a server process.
    in_process: bool = False

    @property
    def cache_key(self) -> str:
        return repr((self.embedded, sorted(self.client_kwargs.items()), str(self.data_dir)))


def choose_server(settings_dict: dict[str, Any]) -> ServerChoice:
    client = dict(settings_dict.get("CLIENT") or {})
    host = settings_dict.get("HOST")
    if host and "host" not in client:
        client["host"] = host
        if settings_dict.get("PORT"):
            client["port"] = int(settings_dict["PORT"])
    if client:
        shown = client.get("host", "localhost")
        return ServerChoice(
            embedded=False,
            client_kwargs=client,
            data_dir=None,
            description=f"MongoDB server {_redact(shown)}",
        )
    data_dir = Path(settings_dict.get("DATA_DIR") or _default_data_dir()).resolve()
    return ServerChoice(
        embedded=True,
        client_kwargs={},
        data_dir=data_dir,
        description=f"embedded engine, data in {data_dir}",
        in_process=settings_dict.get("STORE_SERVER") == STORE_SERVER_IN_PROCESS,
    )


#: The values of the ``STORE_SERVER`` setting: who serves the embedded store
#: when no process does yet (docs/multiprocess.md).
STORE_SERVER_SEPARATE = "separate"
STORE_SERVER_IN_PROCESS = "in-process"
STORE_SERVER_CHOICES = (STORE_SERVER_SEPARATE, STORE_SERVER_IN_PROCESS)


def check_store_server(settings_dict: dict[str, Any]) -> str | None:
    """What is wrong with the entry's ``STORE_SERVER``, if anything."""
    if "STORE_SERVER" not in settings_dict:
        return None
    value = settings_dict["STORE_SERVER"]
    if value not in STORE_SERVER_CHOICES:
        return (f"must be {STORE_SERVER_SEPARATE!r} (the default) or "
                f"{STORE_SERVER_IN_PROCESS!r}, not {value!r}")
    if value == STORE_SERVER_IN_PROCESS and (settings_dict.get("CLIENT")
                                             or settings_dict.get("HOST")):
        return ("applies to the embedded store only; this entry reaches a server through "
                "CLIENT or HOST")
    return None


def _default_data_dir() -> Path:
    base_dir = getattr(settings, "BASE_DIR", None)
    return Path(base_dir or os.getcwd()) / "djongo-data"


def _redact(host: Any) -> str:
    """Hides a password embedded in a connection string before logging it."""
    text = str(host)
    if "@" in text and "://" in text:
        scheme, rest = text.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return text


def _legacy_default_answers() -> bool:
    try:
        with socket.create_connection(LEGACY_DEFAULT_HOST, timeout=0.2):
            return True
    except OSError:
        return False


def _exists(path: Path) -> bool:
    try:
        path.stat()
    except FileNotFoundError:
        return False
    except OSError:
        return True  # there, but not for us: the store check says why
    return True


def start_embedded(data_dir: Path, in_process: bool = False) -> store.Joined:
    """Makes sure the store in ``data_dir`` is served, starting its server if
    no process serves it (``in_process``: serving it from this process);
    says where its socket is and who started it."""
    if not _exists(data_dir) and _legacy_default_answers():
        raise ImproperlyConfigured(
            "The DATABASES entry has no CLIENT, so djongo would create a new, empty embedded "
            f"database in {data_dir}, but a MongoDB server answers on localhost:27017, where "
            "the original Djongo connected by default. Say which one you mean: add "
            "'CLIENT': {'host': 'mongodb://localhost:27017'} to use that server, or set "
            "'DATA_DIR' to use the embedded engine."
        )
    try:
        joined = store.join(data_dir, in_process)
    except store.StoreError as exc:
        raise ImproperlyConfigured(f"djongo cannot use the embedded store: {exc}") from None
    if joined.created:
        logger.warning("djongo: created a new embedded database directory at %s", data_dir)
    return joined


def store_uri(socket: str, database: str = "") -> str:
    """A ``mongodb://`` URI for a store's socket (for mongosh and the like)."""
    return f"mongodb://{quote(socket, safe='')}/{database}"


def _embedded_client(data_dir: Path, in_process: bool = False) -> MongoClient:
    """A client on the store's socket, once its server proved to be ours."""
    joined = start_embedded(data_dir, in_process)
    paths = joined.paths
    client = MongoClient(**_with_command_logger({
        "host": store_uri(paths.socket),
        "directConnection": True,
        # Long enough for a new server to take over from one that died.
        "serverSelectionTimeoutMS": STORE_SELECTION_TIMEOUT_MS,
        "appname": "djongo",
    }))
    deadline = time.monotonic() + STORE_SELECTION_TIMEOUT_MS / 1000
    while True:
        try:
            with pymongo.timeout(JOIN_POLL_SECONDS):
                hello = client.admin.command("hello")
            break
        except PyMongoError as exc:
            if time.monotonic() >= deadline:
                client.close()
                raise database.OperationalError(
                    f"the server of the embedded store {paths.dir} does not answer on "
                    f"{paths.socket}: {exc} (its log: {paths.log})") from exc
        if joined.started_pid is None and not joined.serves:
            # The server this process found may have stopped before answering
            # (a process serving the store itself exited): if nobody serves
            # now, this process starts a server (or serves) as at first.
            joined = start_embedded(data_dir, in_process)
    server = hello.get("djongo") or {}
    theirs = server.get("version")
    if theirs != _core.ENGINE_VERSION:
        client.close()
        running = f"djongo-rs {theirs}" if theirs else "a server that is not djongo-rs"
        raise ImproperlyConfigured(
            f"the embedded store {paths.dir} is served by {running} (pid {server.get('pid', '?')}) "
            f"and this process runs djongo-rs {_core.ENGINE_VERSION}: one store, one version. Stop "
            f"the processes of the other version (their server exits {store.IDLE_EXIT_SECONDS} s "
            "after the last of them), then connect again."
        )
    if joined.serves:
        logger.info("djongo: embedded store %s: no process served it, so this process (pid %d) "
                    "serves it itself (STORE_SERVER 'in-process') on %s", paths.dir, os.getpid(),
                    paths.socket)
        # It holds the lock for as long as it serves: nothing to watch.
        return client
    if joined.started_pid is not None:
        logger.info("djongo: embedded store %s: no process served it, so this process (pid %d) "
                    "started its server (pid %s) on %s", paths.dir, os.getpid(),
                    server.get("pid"), paths.socket)
    else:
        logger.info("djongo: embedded store %s: joined its server (pid %s, djongo-rs %s) on %s",
                    paths.dir, server.get("pid"), theirs, paths.socket)
    # Only now: a process of another version must not start servers here.
    store.watch(paths)
    return client


class CommandLogger(monitoring.CommandListener):
    """Logs, at DEBUG on ``djongo.mongo``, each command sent to the server.

    Next to ``djongo.sql`` (the SQL statement and its parameters) this shows
    what each statement became, and what ``mongo_*`` calls send. Session and
    cluster bookkeeping is left out; pymongo already blanks credentials.
    """

    NOISE = frozenset({"lsid", "$clusterTime", "$db", "$readPreference"})

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if command_logger.isEnabledFor(logging.DEBUG):
            command = {k: v for k, v in event.command.items() if k not in self.NOISE}
            command_logger.debug("%s.%s: %s", event.database_name, event.command_name,
                                 json_util.dumps(command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        if command_logger.isEnabledFor(logging.DEBUG):
            command_logger.debug("%s failed: %s", event.command_name, event.failure)


def _with_command_logger(kwargs: dict[str, Any]) -> dict[str, Any]:
    listeners = [*kwargs.get("event_listeners", ()), CommandLogger()]
    return {**kwargs, "event_listeners": listeners}


def get_store(choice: ServerChoice) -> _core.StoreClient | None:
    """The embedded store's own client (one per store per process), which the
    ORM's statements go through; None for a server reached through CLIENT.
    Call after ``get_client``, which checks the server and watches the store."""
    if not choice.embedded or os.environ.get(EMBEDDED_CLIENT_ENV) == "pymongo":
        return None
    key = choice.cache_key
    with _clients_lock:
        client = _stores.get(key)
        if client is None:
            assert choice.data_dir is not None
            try:
                paths, _ = store.store_paths(choice.data_dir)
            except store.StoreError as exc:
                raise ImproperlyConfigured(
                    f"djongo cannot use the embedded store: {exc}") from None
            client = _core.StoreClient(paths.socket, STORE_SELECTION_TIMEOUT_MS)
            _stores[key] = client
        return client


def get_client(choice: ServerChoice) -> MongoClient:
    """One MongoClient per server per process: clients are thread-safe and costly to make."""
    key = choice.cache_key
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            if choice.embedded:
                assert choice.data_dir is not None
                client = _embedded_client(choice.data_dir, choice.in_process)
            else:
                # Every CLIENT key goes to pymongo as is (replica sets, auth,
                # TLS, timeouts, read/write concerns).
                client = MongoClient(**_with_command_logger(choice.client_kwargs))
            _clients[key] = client
        return client


@dataclass(frozen=True)
class Capabilities:
    """What a server offers beyond MongoDB's core, as DatabaseFeatures declares it."""

    #: Multi-document transactions: a replica set member or a mongos (the
    #: embedded engine reports itself as a one-node replica set).
    transactions: bool
    #: The embedded engine's savepoint commands (MongoDB has none).
    savepoints: bool
    #: Foreign key constraints the server enforces (the embedded engine's
    #: ``foreignKeys`` collection option; MongoDB has none).
    foreign_keys: bool = False


#: The embedded engine's, known without asking it: the backend only talks to
#: an engine of its own version (``_embedded_client`` checks).
EMBEDDED_CAPABILITIES = Capabilities(transactions=True, savepoints=True, foreign_keys=True)

_capabilities: dict[str, Capabilities] = {}


def capabilities_from_hello(hello: dict[str, Any]) -> Capabilities:
    extensions = hello.get("djongo")
    if not isinstance(extensions, dict):
        extensions = {}
    return Capabilities(
        transactions=bool(hello.get("setName") or hello.get("msg") == "isdbgrid"),
        savepoints=bool(extensions.get("savepoints")),
        foreign_keys=bool(extensions.get("foreignKeys")),
    )


def server_capabilities(choice: ServerChoice) -> Capabilities:
    """The capabilities of a settings block's server, once per process.

    The embedded engine's are known from the settings alone; another
    server's come from one ``hello`` through the process's shared client, so
    no Django connection is opened: DatabaseFeatures can answer where one is
    not allowed (a test module read at import time under pytest-django).
    """
    if choice.embedded:
        return EMBEDDED_CAPABILITIES
    key = choice.cache_key
    with _clients_lock:
        known = _capabilities.get(key)
    if known is None:
        known = capabilities_from_hello(get_client(choice).admin.command("hello"))
        with _clients_lock:
            _capabilities[key] = known
    return known
