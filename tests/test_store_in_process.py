"""``STORE_SERVER: "in-process"``: the process that finds the store unserved
serves it itself (docs/multiprocess.md), and its own statements run in the
calling thread instead of crossing the socket.

Each test runs its processes on a data directory of its own. What must hold:
the serving process's ORM statements and ``atomic()`` blocks (mixing its
pymongo with its own client) behave as through a server process; other
processes join and share the data; a forked child never touches the parent's
engine and takes over when the parent dies; a ``kill -9`` or a clean exit of
the serving process leaves the store to the others.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from tests.multiproc import ROOT, SETUP, django_env, wait_until_gone

IN_PROCESS = {"DJONGO_TEST_STORE_SERVER": "in-process"}


def _env(data_dir: Path, in_process: bool) -> dict[str, str]:
    env = django_env(data_dir)
    env.pop("DJONGO_TEST_STORE_SERVER", None)
    return {**env, **IN_PROCESS} if in_process else env


def run_django(data_dir: Path, body: str, in_process: bool = True,
               timeout: float = 120) -> subprocess.CompletedProcess:
    import sys
    import textwrap

    return subprocess.run([sys.executable, "-c", SETUP + textwrap.dedent(body)], cwd=ROOT,
                          env=_env(data_dir, in_process), capture_output=True, text=True,
                          timeout=timeout)


def start_django(data_dir: Path, body: str, in_process: bool = True) -> subprocess.Popen:
    import sys
    import textwrap

    return subprocess.Popen([sys.executable, "-c", SETUP + textwrap.dedent(body)], cwd=ROOT,
                            env=_env(data_dir, in_process), text=True, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@contextlib.contextmanager
def django_process(data_dir: Path, body: str, in_process: bool = True):
    """A running Django process (``start_django``), killed on the way out
    whatever the test did with it."""
    process = start_django(data_dir, body, in_process)
    try:
        yield process
    finally:
        process.kill()


def read_line(process: subprocess.Popen, starting: str) -> str:
    """The next line of ``process``'s output; it must start with ``starting``."""
    line = process.stdout.readline().strip()
    if not line.startswith(starting):
        process.kill()
        raise AssertionError(f"expected {starting!r}, got {line!r}; stderr:\n"
                             f"{process.stderr.read()}")
    return line


def lock_is_free(data_dir: Path) -> bool:
    fd = os.open(data_dir / "djongo.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def test_the_serving_process_runs_orm_statements_and_transactions_itself(tmp_path):
    data = tmp_path / "data"
    done = run_django(data, """
        from django.db import connection
        from djongo import server
        call_command("migrate", verbosity=0)
        connection.ensure_connection()
        store = connection.connection.store.client
        print("in process:", store.in_process)
        # This process's pymongo joins the socket its own threads serve.
        hello = connection.connection.database.client.admin.command("hello")
        print("served by:", hello["djongo"]["pid"] == os.getpid())

        def pymongo_insert(name):
            session = connection.connection.session_for_statement()
            connection.connection.database[Author._meta.db_table].insert_one(
                {"name": name, "email": None}, session=session)

        author = Author.objects.create(name="plain")
        print("get:", Author.objects.get(pk=author.pk).name)
        with transaction.atomic():
            Author.objects.create(name="orm in atomic")
            pymongo_insert("pymongo in atomic")
        try:
            with transaction.atomic():
                Author.objects.create(name="orm rolled back")
                pymongo_insert("pymongo rolled back")
                raise RuntimeError
        except RuntimeError:
            pass
        with transaction.atomic():
            Author.objects.filter(name="plain").update(rank=5)
            with transaction.atomic():
                Author.objects.create(name="savepoint rolled back")
                transaction.set_rollback(True)
        print("names:", sorted(Author.objects.values_list("name", flat=True)))
        print("rank:", Author.objects.get(name="plain").rank)
        # More rows than one reply holds: the cursor is read with getMore.
        Author.objects.bulk_create(Author(name=f"h{i}") for i in range(1200))
        print("rows:", sum(1 for _ in Author.objects.iterator(chunk_size=100)))
        print("deleted:", Author.objects.filter(name__startswith="h1").delete()[0])
        # A command nested deeper than the calling thread runs goes through the socket.
        deep = {"v": 1}
        for _ in range(60):
            deep = {"d": deep}
        transport = connection.connection.store
        transport.command({"insert": "deep", "documents": [{"_id": 1, "deep": deep}]})
        found = transport.command({"find": "deep", "filter": {"deep": deep}})
        print("deep:", found["cursor"]["firstBatch"] == [{"_id": 1, "deep": deep}])
    """)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines())
    assert lines["in process"] == "True"
    assert lines["served by"] == "True"
    assert lines["get"] == "plain"
    assert lines["names"] == "['orm in atomic', 'plain', 'pymongo in atomic']"
    assert lines["rank"] == "5"
    assert lines["rows"] == "1203"
    assert lines["deleted"] == "311"   # h1, h10-h19, h100-h199, h1000-h1199
    assert lines["deep"] == "True"
    assert re.search(rf"this process \(pid \d+\) serves it itself \(STORE_SERVER 'in-process'\) "
                     rf"on {re.escape(str(data / 'djongo.sock'))}", done.stderr), done.stderr


@pytest.mark.parametrize("in_process", [True, False], ids=["in-process", "socket"])
def test_atomic_blocks_end_through_the_stores_client_committed_or_rolled_back_whole(
        tmp_path, in_process):
    """``atomic()`` blocks end (commit, roll back, or the connection closed in
    the middle) through the store's own client (in the calling thread when
    this process serves the store, through its socket otherwise), with
    pymongo sending no ``commitTransaction`` or ``abortTransaction``, and
    still as one transaction with the ``mongo_*`` writes pymongo sent into
    it, whichever client wrote first. What each block left is read by
    another process, through the socket."""
    data = tmp_path / "data"
    done = run_django(data, """
        import threading
        from pymongo import monitoring
        from django.db import connection
        from djongo.transaction import is_transient

        class Ends(monitoring.CommandListener):
            sent = []

            def started(self, event):
                if event.command_name in ("commitTransaction", "abortTransaction"):
                    self.sent.append(event.command_name)

            def succeeded(self, event):
                pass

            def failed(self, event):
                pass

        # Before the connection's MongoClient exists, so that it reports to it.
        monitoring.register(Ends())
        call_command("migrate", verbosity=0)
        connection.ensure_connection()
        print("in process:", connection.connection.store.in_process)

        def mongo_insert(name):
            session = connection.connection.session_for_statement()
            connection.connection.database[Author._meta.db_table].insert_one(
                {"name": name, "email": None, "rank": 0}, session=session)

        def block(name, first, fail):
            with transaction.atomic():
                if first == "orm":
                    Author.objects.create(name=f"{name} orm")
                    mongo_insert(f"{name} mongo")
                else:
                    mongo_insert(f"{name} mongo")
                    Author.objects.create(name=f"{name} orm")
                if fail:
                    raise RuntimeError

        for first in ("orm", "mongo"):
            block(f"kept {first}", first, fail=False)
            try:
                block(f"gone {first}", first, fail=True)
            except RuntimeError:
                pass
        # Only pymongo wrote: the store's client ends a transaction it never joined.
        with transaction.atomic():
            mongo_insert("kept mongo alone")
        with transaction.atomic():
            Author.objects.filter(name__startswith="kept").update(rank=1)
            Author.objects.filter(name="kept orm orm").delete()

        def in_thread(work):
            outcome = []

            def run():
                try:
                    outcome.append(work())
                except Exception as exc:
                    outcome.append(repr(exc))
                finally:
                    connection.close()

            thread = threading.Thread(target=run)
            thread.start()
            thread.join()
            return outcome

        def mongo_rank(name, rank):
            session = connection.connection.session_for_statement()
            connection.connection.database[Author._meta.db_table].update_one(
                {"name": name}, {"$set": {"rank": rank}}, session=session)

        def rank_both(rank):
            with transaction.atomic():
                return Author.objects.filter(
                    name__in=["kept mongo orm", "kept mongo alone"]).update(rank=rank)

        # A rolled back transaction's writes hold nothing: another connection's
        # transaction writes the same documents (a conflict, if it were still open).
        try:
            with transaction.atomic():
                Author.objects.filter(name="kept mongo orm").update(rank=5)
                mongo_rank("kept mongo alone", 5)
                raise RuntimeError
        except RuntimeError:
            pass
        print("after rollback:", in_thread(lambda: rank_both(2)))

        # Left open when its connection closes: rolled back, its writes never
        # seen, the documents free for this thread's transaction.
        def abandon():
            transaction.set_autocommit(False)
            Author.objects.filter(name="kept mongo orm").update(rank=6)
            mongo_rank("kept mongo alone", 6)
            mongo_insert("closed mongo")

        print("abandoned:", in_thread(abandon))
        print("after close:", rank_both(3))
        # A transaction whose server side is gone (its session killed) fails to
        # commit as a DatabaseError a retry can cure, and nothing of it is kept.
        try:
            with transaction.atomic():
                Author.objects.create(name="killed orm")
                session = connection.connection.session_for_statement()
                connection.connection.client.admin.command(
                    "killSessions", [{"id": session.session_id["id"]}])
        except Exception as exc:
            print("killed:", type(exc).__module__, type(exc).__name__, is_transient(exc))
        print("pymongo ended:", Ends.sent)
        print("ends in process:", connection.connection.store.in_process)
    """, in_process=in_process)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines())
    assert lines["in process"] == str(in_process)
    assert lines["pymongo ended"] == "[]"
    assert lines["after rollback"] == "[2]"
    assert lines["abandoned"] == "[None]"
    assert lines["after close"] == "2"
    assert lines["killed"] == "django.db.utils OperationalError True"
    seen = run_django(data, """
        print(sorted(Author.objects.values_list("name", "rank")))
    """, in_process=False)
    assert seen.returncode == 0, seen.stderr
    assert seen.stdout.strip() == str(sorted([
        ("kept orm mongo", 1), ("kept mongo orm", 3), ("kept mongo mongo", 1),
        ("kept mongo alone", 3)]))


def test_the_engine_runs_without_the_gil(tmp_path):
    """A statement waiting in the engine (here for another thread's open
    transaction) must let the other thread run Python and commit: holding the
    GIL, it would wait until its write lock timeout and fail."""
    data = tmp_path / "data"
    done = run_django(data, """
        import threading, time
        from django.db import connection
        call_command("migrate", verbosity=0)
        Author.objects.create(name="shared")
        connection.ensure_connection()
        print("in process:", connection.connection.store.client.in_process)
        written, outcome = threading.Event(), []

        def holder():
            with transaction.atomic():
                Author.objects.filter(name="shared").update(rank=1)
                written.set()
                time.sleep(1)     # Python, while the other thread's write waits in the engine
            connection.close()

        def writer():
            written.wait()
            try:
                outcome.append(Author.objects.filter(name="shared").update(rank=2))
            except Exception as exc:
                outcome.append(repr(exc))
            connection.close()

        threads = [threading.Thread(target=holder), threading.Thread(target=writer)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print("writer:", outcome)
        print("rank:", Author.objects.get(name="shared").rank)
    """)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines())
    assert lines == {"in process": "True", "writer": "[1]", "rank": "2"}, done.stderr


def test_another_process_joins_and_both_read_and_write(tmp_path):
    data = tmp_path / "data"
    with django_process(data, """
        call_command("migrate", verbosity=0)
        Author.objects.create(name="first 0")
        print("ready", os.getpid(), flush=True)
        for i in range(1, 4):
            sys.stdin.readline()
            Author.objects.create(name=f"first {i}")
            print("names", sorted(Author.objects.values_list("name", flat=True)), flush=True)
    """) as first:
        first_pid = int(read_line(first, "ready").split()[1])
        with django_process(data, """
            from django.db import connection
            connection.ensure_connection()
            print("in process", connection.connection.store.client.in_process, flush=True)
            for i in range(3):
                sys.stdin.readline()
                Author.objects.create(name=f"second {i}")
                print("names", sorted(Author.objects.values_list("name", flat=True)), flush=True)
        """) as second:
            assert read_line(second, "in process") == "in process False"
            for i in range(3):
                # Turn by turn, each sees every write of the other so far.
                second.stdin.write("\n")
                second.stdin.flush()
                seen = read_line(second, "names")
                assert f"'second {i}'" in seen and f"'first {i}'" in seen, seen
                first.stdin.write("\n")
                first.stdin.flush()
                seen = read_line(first, "names")
                assert f"'second {i}'" in seen and f"'first {i + 1}'" in seen, seen
            _, err = second.communicate(timeout=60)
        assert second.returncode == 0, err
        assert f"joined its server (pid {first_pid}," in err, err
        first.communicate(timeout=60)
    assert first.returncode == 0


def _store_sockets(socket_path: Path) -> set[str]:
    """The inodes of the Unix sockets bound to ``socket_path``: its listener
    and every connection accepted on it (/proc/net/unix)."""
    inodes = set()
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[7] == str(socket_path):
            inodes.add(fields[6])
    return inodes


def _open_files(pid: int) -> list[str]:
    found = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            found.append(os.readlink(fd))
        except OSError:
            pass
    return found


def _held_locks(pid: int) -> list[str]:
    """The files whose flock ``pid`` holds through one of its descriptors (a
    copy of another process's included; a watcher waiting for one is not)."""
    held = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            info = (Path(f"/proc/{pid}/fdinfo") / fd.name).read_text()
            target = os.readlink(fd)
        except OSError:
            continue
        if "FLOCK" in info:
            held.append(target)
    return held


@pytest.mark.skipif(not Path("/proc/net/unix").exists(), reason="reads /proc (Linux)")
def test_a_forked_child_joins_through_the_socket_and_takes_over_when_the_parent_dies(tmp_path):
    data = tmp_path / "data"
    parent = start_django(data, """
        import time
        from django.db import connection
        call_command("migrate", verbosity=0)
        Author.objects.create(name="parent")
        # The parent's own pymongo is connected too: its accepted connection
        # is one of the descriptors the child must not keep.
        connection.ensure_connection()
        if os.fork() == 0:
            connection.close()
            Author.objects.create(name="child, parent alive")
            connection.ensure_connection()
            print("child", os.getpid(), connection.connection.store.client.in_process, flush=True)
            sys.stdin.readline()          # the parent has been killed
            Author.objects.create(name="child, parent dead")
            print("names", sorted(Author.objects.values_list("name", flat=True)), flush=True)
            os._exit(0)
        time.sleep(600)
    """)
    try:
        _, child_pid, in_process = read_line(parent, "child").split()
        child_pid = int(child_pid)
        assert in_process == "False"
        # The child holds none of the server's descriptors: not the lock, not
        # the data file (redb locks it), not the listener or its connections.
        files = _open_files(child_pid)
        assert not [f for f in files if f.endswith("djongo.redb")], files
        assert _held_locks(child_pid) == []
        # (The child's own watcher has the lock file open, waiting.)
        assert sorted(_held_locks(parent.pid)) == [str(data / "djongo.lock"),
                                                   str(data / "djongo.redb")]
        bound = _store_sockets(data / "djongo.sock")
        assert len(bound) >= 2, "the parent serves a listener and connections"
        assert not {f[len("socket:["):-1] for f in files if f.startswith("socket:[")} & bound
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)
        parent.stdin.write("\n")
        parent.stdin.flush()
        names = read_line(parent, "names")
        assert names == ("names ['child, parent alive', 'child, parent dead', 'parent']"), names
        err = parent.stderr.read()
    finally:
        parent.kill()
        try:
            os.kill(child_pid, signal.SIGKILL)
        except (ProcessLookupError, UnboundLocalError):
            pass
    assert "stopped; this process" in err and "started a new one" in err, err


def test_kill_9_of_the_serving_process_while_another_works(tmp_path):
    data = tmp_path / "data"
    with django_process(data, """
        import time
        call_command("migrate", verbosity=0)
        print("ready", os.getpid(), flush=True)
        time.sleep(600)
    """) as first:
        first_pid = int(read_line(first, "ready").split()[1])
        with django_process(data, """
            import threading, time
            from django.db import connection
            acknowledged, failures, stop = [], [], threading.Event()

            def work():
                i = 0
                while not stop.is_set():
                    try:
                        Author.objects.create(name=f"w{i}")
                        acknowledged.append(f"w{i}")
                    except Exception as exc:
                        failures.append(repr(exc))
                    finally:
                        connection.close()
                    i += 1
                    if i == 5:
                        print("working", flush=True)

            worker = threading.Thread(target=work)
            worker.start()
            sys.stdin.readline()          # the first process has been killed
            count = len(acknowledged)
            while len(acknowledged) < count + 5:
                time.sleep(0.05)
            stop.set()
            worker.join()
            stored = sorted(Author.objects.values_list("name", flat=True))
            print("result", sorted(acknowledged) == stored, len(stored), failures, flush=True)
        """, in_process=False) as second:
            read_line(second, "working")
            os.kill(first_pid, signal.SIGKILL)
            wait_until_gone(first_pid)
            second.stdin.write("\n")
            second.stdin.flush()
            result = read_line(second, "result")
            _, err = second.communicate(timeout=60)
    # Every acknowledged row is there, once; no create failed for good.
    assert result.startswith("result True ") and result.endswith(" []"), (result, err)
    new_server = re.search(r"started a new one \(pid (\d+)\)", err)
    assert new_server, err
    # The takeover is today's: a server process of its own.
    assert int(new_server.group(1)) not in (first_pid, second.pid)


def test_short_lived_processes_serve_in_turn_and_join_each_other(tmp_path):
    """Processes that start together and exit as soon as they are done: one
    serves while the others join, and one that was joining a server that
    stopped before answering serves (or joins the next) instead of waiting
    for nobody."""
    data = tmp_path / "data"
    assert run_django(data, 'call_command("migrate", verbosity=0)').returncode == 0
    script = """
        ids = [Author.objects.create(name="p").pk for _ in range(10)]
        print(" ".join(map(str, ids)))
    """
    workers = [start_django(data, script) for _ in range(4)]
    ids = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        ids += [int(x) for x in out.split()]
    assert sorted(ids) == list(range(1, 41))


def test_a_clean_exit_stops_serving_and_releases_the_store(tmp_path):
    data = tmp_path / "data"
    done = run_django(data, """
        call_command("migrate", verbosity=0)
        Author.objects.create(name="kept")
    """)
    assert done.returncode == 0, done.stderr
    assert not (data / "djongo.sock").exists()
    assert lock_is_free(data)
    # The data file is closed and whole: the next process (a server process
    # this time) opens it.
    after = run_django(data, 'print(Author.objects.get().name)', in_process=False)
    assert after.stdout.strip() == "kept", after.stderr
    assert "started its server" in after.stderr


def test_after_a_clean_exit_a_joined_process_carries_on(tmp_path):
    data = tmp_path / "data"
    with django_process(data, """
        call_command("migrate", verbosity=0)
        Author.objects.create(name="first")
        print("ready", flush=True)
        sys.stdin.readline()
    """) as first:
        read_line(first, "ready")
        with django_process(data, """
            Author.objects.create(name="second, before")
            print("joined", flush=True)
            sys.stdin.readline()          # the first process has exited
            Author.objects.create(name="second, after")
            print("names", sorted(Author.objects.values_list("name", flat=True)), flush=True)
        """) as second:
            read_line(second, "joined")
            first.communicate("\n", timeout=60)
            assert first.returncode == 0
            second.stdin.write("\n")
            second.stdin.flush()
            names = read_line(second, "names")
            _, err = second.communicate(timeout=60)
    assert names == "names ['first', 'second, after', 'second, before']", err
    assert "stopped; this process" in err and "started a new one" in err, err


@pytest.mark.parametrize("settings_dict, message", [
    ({"STORE_SERVER": "inprocess"},
     r"\['STORE_SERVER'\] must be 'separate' \(the default\) or 'in-process', not 'inprocess'"),
    ({"STORE_SERVER": "in-process", "CLIENT": {"host": "mongodb://db1"}},
     r"\['STORE_SERVER'\] applies to the embedded store only"),
])
def test_a_wrong_store_server_setting_is_a_clear_error(settings_dict, message):
    from djongo.base import DatabaseWrapper

    wrapper = DatabaseWrapper({"ENGINE": "djongo", "NAME": "x", **settings_dict})
    with pytest.raises(ImproperlyConfigured, match=message):
        wrapper.get_connection_params()


def test_the_default_is_a_server_process_of_its_own(tmp_path):
    data = tmp_path / "data"
    done = run_django(data, """
        from django.db import connection
        connection.ensure_connection()
        print(connection.connection.store.client.in_process)
        hello = connection.connection.database.client.admin.command("hello")
        print(hello["djongo"]["pid"] != os.getpid())
    """, in_process=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]
