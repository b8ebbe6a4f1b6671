"""One embedded store, many processes: who serves it, who joins it, who is kept out.

Each test gives its processes a data directory of its own; the store's server
is a process of its own that the first of them starts (see djongo/store.py).
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import bson
import pytest
from bson.int64 import Int64
from django.core.exceptions import ImproperlyConfigured
from djongo import _core, server, store
from pymongo.errors import OperationFailure

from tests.engine_server import Server
from tests.multiproc import (
    ROOT,
    run_django,
    server_pid,
    start_django,
    wait_until_gone,
)

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="changing uid needs root")


def test_processes_share_the_store_and_say_how(tmp_path):
    data = tmp_path / "data"
    first = start_django(data, """
        call_command("migrate", verbosity=0)
        Author.objects.create(name="from the first")
        print("ready", flush=True)
        sys.stdin.readline()          # stays connected while the second one works
        print(sorted(Author.objects.values_list("name", flat=True)), flush=True)
    """, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert first.stdout.readline().strip() == "ready", first.stderr.read()
        second = run_django(data, """
            Author.objects.create(name="from the second")
            print(sorted(Author.objects.values_list("name", flat=True)))
        """)
        assert second.returncode == 0, second.stderr
        assert second.stdout.strip() == "['from the first', 'from the second']"
        out, err = first.communicate("\n", timeout=60)
    finally:
        first.kill()
    assert out.strip() == "['from the first', 'from the second']"
    pid = re.search(r"started its server \(pid (\d+)\) on (\S+)", err)
    assert pid, err
    assert pid.group(2) == str(data / "djongo.sock")
    assert f"joined its server (pid {pid.group(1)}, djongo-rs {_core.ENGINE_VERSION})" in \
        second.stderr
    # The server is a process of its own: neither of the two.
    assert int(pid.group(1)) not in (first.pid,)


def test_the_store_is_private_to_its_owner(tmp_path):
    data = tmp_path / "data"
    done = run_django(data, 'call_command("migrate", verbosity=0)')
    assert done.returncode == 0, done.stderr
    assert data.stat().st_mode & 0o777 == 0o700
    for name in ("djongo.sock", "djongo.redb", "djongo.lock", "djongo-server.log"):
        assert (data / name).stat().st_mode & 0o777 == 0o600, name


@pytest.fixture
def public_dir():
    """A directory every user may enter (pytest's own tmp_path is root's alone),
    so that only the store's own modes stand between another user and the data."""
    parent = Path(tempfile.mkdtemp(prefix="djongo-public-", dir="/tmp"))
    parent.chmod(0o755)
    yield parent
    shutil.rmtree(parent, ignore_errors=True)


@needs_root
@pytest.mark.parametrize("dir_mode", [0o700, 0o755])
def test_another_user_cannot_connect_or_read(public_dir, dir_mode):
    data = public_dir / "data"
    done = run_django(data, """
        Author.objects.create(name="secret")
        print("ok")
    """)
    assert done.returncode == 0, done.stderr
    data.chmod(dir_mode)  # 0755 is accepted: others may list, not write
    intruder = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import os, socket, pymongo
        from urllib.parse import quote
        # Whatever pymongo imports on first use, imported while still root.
        try:
            pymongo.MongoClient("mongodb://%2Fnowhere.sock",
                                serverSelectionTimeoutMS=100).admin.command("ping")
        except pymongo.errors.PyMongoError:
            pass
        os.setgid({NOBODY}); os.setuid({NOBODY})
        results = []
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect({str(data / "djongo.sock")!r})
            results.append("connected")
        except PermissionError:
            results.append("connect refused")
        try:
            open({str(data / "djongo.redb")!r}, "rb").read(1)
            results.append("read the data file")
        except PermissionError:
            results.append("read refused")
        uri = "mongodb://" + quote({str(data / "djongo.sock")!r}, safe="")
        client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=1000)
        try:
            client.blog.list_collection_names()
            results.append("pymongo connected")
        except pymongo.errors.PyMongoError:
            results.append("pymongo refused")
        print(results)
    """)], capture_output=True, text=True, timeout=60)
    assert intruder.returncode == 0, intruder.stderr
    assert intruder.stdout.strip() == \
        "['connect refused', 'read refused', 'pymongo refused']"
    # The owner still gets in.
    again = run_django(data, 'print(Author.objects.get().name)')
    assert again.stdout.strip() == "secret", again.stderr


def test_a_data_dir_others_can_write_is_refused(tmp_path):
    data = tmp_path / "open"
    data.mkdir()
    data.chmod(0o777)
    with pytest.raises(ImproperlyConfigured, match=r"writable by other users.*chmod 700"):
        server.start_embedded(data)
    assert not (data / "djongo.sock").exists()


@needs_root
def test_a_data_dir_of_another_user_is_refused(tmp_path):
    data = tmp_path / "theirs"
    data.mkdir(mode=0o700)
    os.chown(data, NOBODY, NOBODY)
    with pytest.raises(ImproperlyConfigured, match=rf"belongs to uid {NOBODY}.*runs as uid 0"):
        server.start_embedded(data)


@needs_root
def test_a_data_dir_the_user_cannot_write_is_a_clear_error(public_dir):
    data = public_dir / "read-only"
    data.mkdir(mode=0o500)
    os.chown(data, NOBODY, NOBODY)
    attempt = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import os, sys
        from pathlib import Path
        from django.conf import settings
        settings.configure()
        from djongo import server
        os.setgid({NOBODY}); os.setuid({NOBODY})
        try:
            server.start_embedded(Path({str(data)!r}))
        except Exception as exc:
            print(type(exc).__name__, exc)
    """)], capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "ImproperlyConfigured" in attempt.stdout, attempt.stderr
    assert f"{data} is not writable by this user (uid {NOBODY})" in attempt.stdout


def test_a_file_system_without_locks_is_named(tmp_path):
    """What NFS without a lock manager answers to flock() (ENOLCK), as a user reads it."""
    paths, _ = store.store_paths(tmp_path / "data")
    message = str(store._lock_error(paths, OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))))
    assert f"the file system of {paths.dir} has no working file locks" in message
    assert "local file system" in message
    other = str(store._lock_error(paths, OSError(errno.EIO, os.strerror(errno.EIO))))
    assert "no working file locks" not in other


def test_a_long_data_dir_gets_a_private_socket_elsewhere(tmp_path):
    data = tmp_path / ("a" * 60) / ("b" * 60) / "data"
    assert len(str(data / "djongo.sock")) > 108
    first = run_django(data, """
        call_command("migrate", verbosity=0)
        Author.objects.create(name="long")
    """)
    assert first.returncode == 0, first.stderr
    second = run_django(data, 'print(Author.objects.get().name)')
    assert second.stdout.strip() == "long", second.stderr
    socket_path = re.search(r"joined its server \(pid \d+, [^)]*\) on (\S+)", second.stderr)
    assert socket_path, second.stderr
    runtime = Path(socket_path.group(1)).parent
    assert runtime == Path(f"/tmp/djongo-{os.geteuid()}")
    assert runtime.stat().st_mode & 0o777 == 0o700
    assert Path(socket_path.group(1)).stat().st_mode & 0o777 == 0o600


def test_a_server_killed_with_nobody_connected_leaves_a_socket_the_next_one_replaces(tmp_path):
    data = tmp_path / "data"
    assert run_django(data, 'Author.objects.create(name="before")').returncode == 0
    pid = server_pid(data)
    os.kill(pid, signal.SIGKILL)
    wait_until_gone(pid)
    assert (data / "djongo.sock").exists(), "kill -9 leaves the socket file behind"
    after = run_django(data, 'print(Author.objects.get().name)')
    assert after.stdout.strip() == "before", after.stderr
    assert "started its server" in after.stderr


def test_a_forked_child_carries_on_when_the_server_dies(tmp_path):
    """gunicorn's and celery's workers are forked from a process that may have
    used the store: the child watches the store itself."""
    data = tmp_path / "data"
    done = run_django(data, """
        Author.objects.create(name="parent")
        from tests.multiproc import server_pid
        from django.conf import settings
        from pathlib import Path
        if os.fork() == 0:
            import signal
            from django.db import connection
            connection.close()
            os.kill(server_pid(Path(settings.DATA_DIR)), signal.SIGKILL)
            time.sleep(0.5)  # the parent is gone: only this child can start a server
            Author.objects.create(name="child")
            print(sorted(Author.objects.values_list("name", flat=True)), flush=True)
        os._exit(0)
    """.replace("import signal", "import signal, time"))
    # run() returns once the child, which shares the parent's output, is done.
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['child', 'parent']", done.stderr
    assert "stopped; this process" in done.stderr and "started a new one" in done.stderr


def test_the_djongo_server_command_serves_the_store_for_django(tmp_path):
    data = tmp_path / "data"
    command = Path(sys.executable).parent / "djongo-server"
    proc = subprocess.Popen([str(command), "--dbpath", str(data), "--no-tcp"],
                            stderr=subprocess.PIPE, text=True)
    try:
        banner = proc.stderr.readline()
        assert f"(pid {proc.pid}) serving {data} on {data / 'djongo.sock'}" in banner, banner
        joined = run_django(data, 'Author.objects.create(name="via the command")')
        assert joined.returncode == 0, joined.stderr
        assert f"joined its server (pid {proc.pid}," in joined.stderr
        # A second server for the same store is refused, naming the first.
        second = subprocess.run([str(command), "--dbpath", str(data), "--port", "0"],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert "already served by another djongo-server" in second.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    assert not (data / "djongo.sock").exists()


def _fake_server(path: Path, version: str) -> socket.socket:
    """Answers every command on ``path`` like a djongo-rs ``version`` would."""
    hello = {"ok": 1.0, "isWritablePrimary": True, "ismaster": True, "helloOk": True,
             "minWireVersion": 0, "maxWireVersion": 21, "maxBsonObjectSize": 16777216,
             "maxMessageSizeBytes": 48000000, "maxWriteBatchSize": 100000,
             "logicalSessionTimeoutMinutes": 30, "djongo": {"version": version, "pid": 1}}

    def serve(conn: socket.socket) -> None:
        with conn:
            while True:
                header = conn.recv(16, socket.MSG_WAITALL)
                if len(header) < 16:
                    return
                length, request_id, _, op = struct.unpack("<iiii", header)
                conn.recv(length - 16, socket.MSG_WAITALL)
                body = bson.encode(hello)
                if op == 2004:  # OP_QUERY handshake: OP_REPLY
                    payload = struct.pack("<iqii", 0, 0, 0, 1) + body
                    reply_op = 1
                else:  # OP_MSG
                    payload = struct.pack("<iB", 0, 0) + body
                    reply_op = 2013
                conn.sendall(struct.pack("<iiii", 16 + len(payload), 0, request_id, reply_op)
                             + payload)

    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen()

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener


def test_a_server_of_another_version_is_refused_naming_both(tmp_path):
    data = tmp_path / "data"
    paths, _ = store.store_paths(data)
    lock = os.open(paths.lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)  # "it" serves the store
    listener = _fake_server(Path(paths.socket), "0.0.1-older")
    try:
        attempt = run_django(data, "Author.objects.count()")
    finally:
        listener.close()
        os.close(lock)
    assert attempt.returncode != 0
    assert "ImproperlyConfigured" in attempt.stderr
    assert (f"served by djongo-rs 0.0.1-older (pid 1) and this process runs djongo-rs "
            f"{_core.ENGINE_VERSION}") in attempt.stderr


def test_dbshell_points_mongosh_at_the_stores_socket(tmp_path):
    from djongo.client import DatabaseClient

    data = tmp_path / "data"
    args, _ = DatabaseClient.settings_to_cmd_args_env(
        {"NAME": "blog", "DATA_DIR": str(data)}, ["--quiet"])
    quoted = str(data / "djongo.sock").replace("/", "%2F")
    assert args == ["mongosh", f"mongodb://{quoted}/blog", "--quiet"]


# --- retried writes reach the next server ------------------------------------------------


def test_a_retried_write_is_answered_by_the_next_server_not_applied_again(tmp_path):
    """What a driver does when the server dies between committing a write and
    replying: the same statement (session, txnNumber) once more, to the store's
    next server. It gets the first reply; nothing is applied twice."""
    server_ = Server(tmp_path / "data").start()
    client = server_.client(retryWrites=False)
    db = client.app
    # A driver retries the latest statement of a session: one per session.
    s1, s2, s3 = (client.start_session() for _ in range(3))
    try:
        insert = {"insert": "c", "documents": [{"_id": 1}], "txnNumber": Int64(1)}
        assert db.command(insert, session=s1)["n"] == 1
        bump = {"findAndModify": "c", "query": {"_id": 1}, "update": {"$inc": {"n": 1}},
                "new": True, "txnNumber": Int64(1)}
        assert db.command(bump, session=s2)["value"] == {"_id": 1, "n": 1}
        begin = {"insert": "c", "documents": [{"_id": 2}], "txnNumber": Int64(1),
                 "startTransaction": True, "autocommit": False}
        db.command(begin, session=s3)
        commit = {"commitTransaction": 1, "txnNumber": Int64(1), "autocommit": False}
        client.admin.command(commit, session=s3)

        server_.kill9()
        server_.start()

        assert db.command(insert, session=s1)["n"] == 1
        assert db.command(bump, session=s2)["value"] == {"_id": 1, "n": 1}
        client.admin.command(commit, session=s3)
        never = {"commitTransaction": 1, "txnNumber": Int64(2), "autocommit": False}
        with pytest.raises(OperationFailure) as failed:
            client.admin.command(never, session=s3)
        assert failed.value.code == 251
        # Once a later statement of the session is recorded, an older one is refused.
        later = {"insert": "c", "documents": [{"_id": 3}], "txnNumber": Int64(2)}
        assert db.command(later, session=s1)["n"] == 1
        with pytest.raises(OperationFailure) as old:
            db.command(insert, session=s1)
        assert old.value.code == 225
        assert sorted(db.c.find(), key=lambda d: d["_id"]) == \
            [{"_id": 1, "n": 1}, {"_id": 2}, {"_id": 3}]
    finally:
        for s in (s1, s2, s3):
            s.end_session()
        client.close()
        server_.stop()
