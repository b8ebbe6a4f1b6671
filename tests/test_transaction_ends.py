"""Ending a transaction through the store's own client (``shared_transaction``)
gives what ending it through pymongo gives.

On the embedded store a Django connection commits and rolls back through the
store's client rather than pymongo (``Connection._end_transaction``: through
the store's socket, or in the calling thread with ``STORE_SERVER:
"in-process"``), so every outcome pymongo's
``commit_transaction``/``abort_transaction`` has must be the same: committed
or not, the error Django sees (its class, code and transaction labels), and
the session's state afterwards. Fail points make the server produce each
outcome (they need ``--enable-test-commands``, which an in-process store does
not serve), so both ways run here against a ``djongo-server`` of their own,
ours through its socket; tests/test_store_in_process.py runs the in-process
path itself. A server killed under an ``atomic()`` block is compared at the
end, through Django on the test store's own server.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from django.conf import settings
from djongo import _core, shared_transaction
from djongo.cursor import _translated
from djongo.transport import StoreTransport
from pymongo import MongoClient, WriteConcern
from pymongo.errors import PyMongoError

from tests.blogapp.models import Author
from tests.engine_server import SocketServer
from tests.multiproc import run_django, server_pid, wait_until_gone

LABELS = ("TransientTransactionError", "UnknownTransactionCommitResult")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    where = tmp_path_factory.mktemp("ends")
    server = SocketServer(str(where / "data"), str(where / "store.sock"),
                          "--enable-test-commands").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(store):
    c = MongoClient(f"mongodb://{quote_plus(store.socket)}", directConnection=True,
                    serverSelectionTimeoutMS=5000)
    yield c
    c.close()


@pytest.fixture(scope="module")
def transport(store):
    return StoreTransport(_core.StoreClient(store.socket, 5000), None, "ends")


_keys = iter(range(1, 10**6))


def _end(client, transport, way: str, end: str, fail: dict | None, times: int = 1,
         write_concern: WriteConcern | None = None):
    """Runs a transaction of one pymongo insert, ends it ``way`` (``pymongo`` or
    ``store``) with ``end`` (``commit`` or ``abort``) while ``fail`` (a
    ``failCommand`` fail point's data) holds for the first ``times`` ends;
    what it came to: the error as Django sees it, whether the row is there,
    and whether the session is still in a transaction."""
    key = next(_keys)
    collection = client.ends.rows
    name = {"commit": "commitTransaction", "abort": "abortTransaction"}[end]
    if fail is not None:
        client.admin.command("configureFailPoint", "failCommand", mode={"times": times},
                             data={"failCommands": [name], **fail})
    error = None
    try:
        with client.start_session() as session:
            session.start_transaction(write_concern=write_concern)
            collection.insert_one({"_id": key}, session=session)
            session_id = bytes(session.session_id["id"])

            def send(command, number):
                return transport.end_transaction(command, (session_id, number, False))

            try:
                if way == "pymongo":
                    (session.commit_transaction if end == "commit"
                     else session.abort_transaction)()
                else:
                    (shared_transaction.commit if end == "commit"
                     else shared_transaction.abort)(session, send)
            except PyMongoError as exc:
                django = _translated(exc)
                error = (type(django).__name__, django.code, sorted(django.labels))
            open_after = session.in_transaction
    finally:
        client.admin.command("configureFailPoint", "failCommand", mode="off")
    return error, collection.find_one({"_id": key}) is not None, open_after


OUTCOMES = {
    "committed": ("commit", None, 1),
    "write conflict": ("commit", {"errorCode": 112,
                                  "errorLabels": ["TransientTransactionError"]}, 1),
    "time limit": ("commit", {"errorCode": 50}, 1),
    "retried and failed again": ("commit", {"errorCode": 91}, 2),
    "connection lost once": ("commit", {"closeConnection": True}, 1),
    "connection lost twice": ("commit", {"closeConnection": True}, 2),
    "write concern timeout": ("commit", {"writeConcernError": {
        "code": 64, "codeName": "WriteConcernFailed", "errmsg": "waiting timed out",
        "errInfo": {"wtimeout": True}}}, 1),
    "other write concern error": ("commit", {"writeConcernError": {
        "code": 100, "codeName": "UnsatisfiableWriteConcern", "errmsg": "no"}}, 1),
    "rolled back": ("abort", None, 1),
    "abort failing": ("abort", {"errorCode": 112}, 2),
    "abort retried": ("abort", {"errorCode": 91}, 1),
    "abort's connection lost": ("abort", {"closeConnection": True}, 2),
}


@pytest.mark.parametrize("outcome", list(OUTCOMES))
def test_ending_through_the_store_client_comes_to_what_pymongo_comes_to(
        client, transport, outcome):
    end, fail, times = OUTCOMES[outcome]
    pymongo_way = _end(client, transport, "pymongo", end, fail, times)
    store_way = _end(client, transport, "store", end, fail, times)
    assert store_way == pymongo_way
    committed = pymongo_way[1]
    assert committed == (end == "commit" and outcome not in (
        "write conflict", "time limit", "retried and failed again", "connection lost twice"))


class _DyingListener:
    """A Unix socket in front of the store's server that, once the server has
    closed a connection, accepts the next ``dying`` connections and closes
    each after reading from it without an answer: what a client meets while a
    killed server's listener outlives the process that served it."""

    def __init__(self, upstream: str, path: str, dying: int) -> None:
        self.upstream, self.path, self.dying = upstream, path, dying
        self.pending = 0
        self.refused = 0
        self.lock = threading.Lock()
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(path)
        self.listener.listen()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                refuse = self.pending > 0
                if refuse:
                    self.pending -= 1
                    self.refused += 1
            if refuse:
                downstream.recv(1 << 16)
                downstream.close()
                continue
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.upstream)
            threading.Thread(target=self._pump, args=(downstream, upstream, False),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, downstream, True),
                             daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_server: bool) -> None:
        try:
            while data := source.recv(1 << 16):
                sink.sendall(data)
        except OSError:
            return
        if from_server:
            # The server closed it (the client's own close shuts both ends
            # from the other pump first, and this recv then fails).
            with self.lock:
                self.pending = self.dying
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            end.close()

    def close(self) -> None:
        self.listener.close()


def test_a_commit_sent_again_waits_for_a_server_that_answers(client, store, tmp_path):
    """The commit's connection closes, and the next two connections land on
    a listener that no longer serves: the commit is sent again only to a
    server that answered a ping (as a driver retries only on a server its
    monitor found), so it commits instead of failing with
    UnknownTransactionCommitResult on a dead connection."""
    listener = _DyingListener(store.socket, str(tmp_path / "dying.sock"), dying=2)
    try:
        through = StoreTransport(_core.StoreClient(listener.path, 5000), None, "ends")
        outcome = _end(client, through, "store", "commit", {"closeConnection": True})
    finally:
        listener.close()
    assert outcome == (None, True, False)
    assert listener.refused == 2


def test_a_commit_failing_once_with_a_retryable_error_is_sent_again(client, transport):
    """A stopping server's ShutdownInProgress (91, RetryableWriteError): the
    commit is sent once more and commits. (pymongo sends it again too, once
    its monitor has found the server again: here it marks the socket's only
    server unknown and, within its selection timeout, raises the first error.)"""
    assert _end(client, transport, "store", "commit", {"errorCode": 91}) == (None, True, False)


def test_the_commit_carries_the_transactions_write_concern(client, transport):
    """A write concern the server cannot satisfy fails the commit both ways:
    it was sent."""
    concern = WriteConcern(w=5)
    pymongo_way = _end(client, transport, "pymongo", "commit", None, write_concern=concern)
    store_way = _end(client, transport, "store", "commit", None, write_concern=concern)
    assert store_way == pymongo_way
    assert pymongo_way[0] is not None


def test_a_transaction_that_never_reached_the_server_ends_without_a_command(client,
                                                                           transport):
    sent = []
    with client.start_session() as session:
        session.start_transaction()
        shared_transaction.commit(session, lambda command, number: sent.append(command))
        assert not session.in_transaction
        session.start_transaction()
        shared_transaction.abort(session, lambda command, number: sent.append(command))
        assert not session.in_transaction
    assert sent == []


# -- the store's server killed under an atomic() block ---------------------------------------
#
# On the embedded store (its server a process of its own, reached through its
# socket) a Django connection ends its transactions through the store's client.
# Killed, the server takes the open transaction with it, and this process's
# watcher starts the next one (djongo.store). What a user sees must be what the
# same block sees when everything goes through pymongo, as through ``CLIENT``.


def _kill_the_stores_server() -> None:
    data = Path(settings.DATABASES["default"]["DATA_DIR"])
    pid = server_pid(data)
    os.kill(pid, signal.SIGKILL)
    wait_until_gone(pid)


def _killed(way: str, when: str):
    """Runs an atomic() block that creates a row and meets the store's server
    killed ``when`` (``mid-transaction``: before its second statement;
    ``at commit``: after its last one), with the connection's statements and
    ends going ``way`` (``store``: the store's client, as the backend does;
    ``pymongo``: pymongo's, as through ``CLIENT``). What it came to: the
    error Django sees, the rows there afterwards, and the rows after the next
    statement (which must reach the next server)."""
    from django.db import DatabaseError, connection, transaction

    connection.ensure_connection()
    djongo_connection = connection.connection
    store = djongo_connection.store
    if way == "pymongo":
        djongo_connection.store = None
    error = None
    try:
        try:
            with transaction.atomic():
                Author.objects.create(name="in the block")
                _kill_the_stores_server()
                if when == "mid-transaction":
                    Author.objects.create(name="after the kill")
        except DatabaseError as exc:
            cause = exc.__cause__
            error = (type(exc).__name__, getattr(cause, "code", None),
                     sorted(getattr(cause, "labels", ())))
        left = sorted(Author.objects.values_list("name", flat=True))
        Author.objects.create(name="next")
        after = sorted(Author.objects.values_list("name", flat=True))
    finally:
        djongo_connection.store = store
    Author.objects.all().delete()
    return error, left, after


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("when", ["mid-transaction", "at commit"])
def test_a_server_killed_under_an_atomic_block_ends_it_as_through_pymongo(when):
    store_way = _killed("store", when)
    pymongo_way = _killed("pymongo", when)
    assert store_way == pymongo_way
    error, left, after = store_way
    assert error is not None and error[0] in ("OperationalError", "InterfaceError"), error
    assert left == [] and after == ["next"]


# -- the store's socket closed under an atomic() block ----------------------------------------

_CLOSED = """
from django.db import DatabaseError, connection
call_command("migrate", run_syncdb=True, verbosity=0)
Author.objects.all().delete()
connection.ensure_connection()
print("store's client:", connection.connection.store is not None)
admin = connection.connection.client.admin

def close_on(name, times):
    admin.command("configureFailPoint", "failCommand", mode={"times": times},
                  data={"failCommands": [name], "closeConnection": True})

def names():
    return sorted(Author.objects.values_list("name", flat=True))

def block(label, body):
    error = None
    try:
        with transaction.atomic():
            body()
    except DatabaseError as exc:
        cause = exc.__cause__
        error = (type(exc).__name__, getattr(cause, "code", None),
                 sorted(getattr(cause, "labels", ())))
    finally:
        admin.command("configureFailPoint", "failCommand", mode="off")
    print(f"{label}:", error, names())
    Author.objects.all().delete()

def mid_transaction():
    Author.objects.create(name="first")
    close_on("insert", 1)
    Author.objects.create(name="second")

def at_commit(times):
    def body():
        Author.objects.create(name="first")
        close_on("commitTransaction", times)
    return body

block("mid-transaction", mid_transaction)
block("at commit, once", at_commit(1))
block("at commit, twice", at_commit(2))
Author.objects.create(name="next")
print("next:", names())
"""


def test_a_socket_closed_under_an_atomic_block_ends_it_as_through_pymongo(tmp_path):
    """The store's server (with fail points) closes the connection of an
    atomic() block's statement, or of its commit once or twice: through the
    store's client the block comes to what it comes to through pymongo
    (``CLIENT`` pointed at the same server): the error Django sees, what is
    kept, and the next statement served."""
    data = tmp_path / "data"
    data.mkdir()
    # It takes the store's lock and serves djongo.sock, so Django joins it.
    server = SocketServer(str(data), str(data / "tests.sock"), "--enable-test-commands").start()
    through_pymongo = {"DJONGO_TEST_MONGODB_URI": "mongodb://" + quote(
        str(data / "djongo.sock"), safe="")}
    try:
        ways = [run_django(data, _CLOSED, env=env) for env in ({}, through_pymongo)]
    finally:
        server.stop()
    store_way, pymongo_way = (dict(line.split(": ", 1) for line in way.stdout.splitlines())
                              for way in ways)
    assert all(way.returncode == 0 for way in ways), [way.stderr for way in ways]
    assert store_way.pop("store's client") == "True"
    assert pymongo_way.pop("store's client") == "False"
    assert store_way == pymongo_way
    assert store_way == {
        "mid-transaction": "('OperationalError', None, ['TransientTransactionError']) []",
        "at commit, once": "None ['first']",
        "at commit, twice": "('OperationalError', None, ['UnknownTransactionCommitResult']) []",
        "next": "['next']",
    }


# -- pymongo's overload retry after the store's client started the transaction ---------------


class _Statements:
    """What a Django connection gives the store's client for a statement in
    ``session``'s transaction (``Connection.transaction_fields`` and
    ``statement_completed``)."""

    def __init__(self, session):
        self.session = session

    def transaction_fields(self):
        session_id = bytes(self.session.session_id["id"])
        number, starting = shared_transaction.statement(self.session)
        return session_id, number, starting

    def statement_completed(self):
        shared_transaction.completed(self.session)


def test_pymongo_retrying_an_overloaded_command_keeps_what_the_store_client_began(client, store):
    """pymongo 4.20 retries a command that a server refuses as overloaded
    (``SystemOverloadedError``), and sends the retry as the transaction's
    first command again (``startTransaction``) unless a command of the
    transaction has completed. The store's client's statement started it:
    the retry must join that transaction, not start it again, and both
    writes commit."""
    key = next(_keys)
    collection = client.ends.rows
    with client.start_session() as session:
        session.start_transaction()
        statements = StoreTransport(_core.StoreClient(store.socket, 5000), _Statements(session),
                                    "ends")
        statements.insert("rows", [{"_id": key}])
        client.admin.command("configureFailPoint", "failCommand", mode={"times": 1}, data={
            "failCommands": ["insert"], "errorCode": 462,
            "errorLabels": ["RetryableError", "SystemOverloadedError"]})
        try:
            collection.insert_one({"_id": -key}, session=session)
        finally:
            client.admin.command("configureFailPoint", "failCommand", mode="off")
        session.commit_transaction()
    assert sorted(d["_id"] for d in collection.find({"_id": {"$in": [key, -key]}})) == [-key, key]
