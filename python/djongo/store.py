"""One embedded store, many processes.

Every process whose settings select the embedded engine with the same
``DATA_DIR`` (runserver, ``manage.py shell``, gunicorn's workers, celery, a
cron'd command) uses the same store at the same time. One process, the
store's server, has the database file open and serves it on an owner-only
Unix socket inside ``DATA_DIR``; every other process connects to that socket
through pymongo.

The server is a process of its own (``djongo-server``), started on demand by
the first process that needs the store and gone a few seconds after the last
one leaves. No web worker, shell or cron job carries the store inside its own
life, so gunicorn killing a worker on timeout, runserver reloading or a shell
exiting leaves every other process's transactions alone, and nothing that
forks (gunicorn, celery's prefork pool) inherits the database file.

``DATA_DIR/djongo.lock`` says who serves: the server holds an exclusive
``flock`` on it for as long as it runs. A process that finds the lock free
takes it, starts a server and hands it the lock, so two processes can never
both start one. Every process that uses the store keeps a watcher thread
blocked on that lock; if the server dies (``kill -9``, out of memory), the
kernel releases the lock, the first watcher to get it starts a new server, and
pymongo's retry of the interrupted operation reaches that one.

With ``STORE_SERVER: "in-process"`` a process that finds the lock free
serves the store itself instead (``serve_here``): the same server, on threads
of this process and the same socket, stopped at interpreter exit; a child
forked from it closes its copies of the server's descriptors and joins
through the socket (``_after_fork_in_child``).

This module needs only the standard library and ``djongo._core``: it is also
the ``djongo-server`` command, and what a started server runs.
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import _core

logger = logging.getLogger("djongo")

#: A started server stops once no process has been connected for this long.
IDLE_EXIT_SECONDS = 10
#: How long the process that starts a server waits for it to serve.
START_TIMEOUT_SECONDS = 60

_LOCK_FD_ENV = "DJONGO_STORE_LOCK_FD"
_READY_FD_ENV = "DJONGO_STORE_READY_FD"
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


class StoreError(Exception):
    """The store cannot be served or joined; the message says why and what to do."""


@dataclass(frozen=True)
class StorePaths:
    dir: Path
    lock: Path
    socket: str
    log: Path


@dataclass(frozen=True)
class Joined:
    """How this process reached a store."""

    paths: StorePaths
    #: The pid of the server this process started, or None if one was running.
    started_pid: int | None
    #: The data directory did not exist before.
    created: bool
    #: This process serves the store itself (``STORE_SERVER: "in-process"``).
    serves: bool = False


def store_paths(data_dir: Path) -> tuple[StorePaths, bool]:
    """Checks ``data_dir`` (creating it 0700) and names its parts."""
    try:
        found = _core.store_paths(str(data_dir))
    except _core.EngineError as exc:
        raise StoreError(str(exc)) from None
    paths = StorePaths(dir=Path(found["dir"]), lock=Path(found["lock"]),
                       socket=found["socket"], log=Path(found["log"]))
    return paths, bool(found["created"])


def join(data_dir: Path, in_process: bool = False) -> Joined:
    """Reaches the store in ``data_dir``: starts its server unless one runs.
    ``in_process``: when no process serves it, this process serves it itself
    (``serve_here``) instead of starting a server process.

    A server that is still starting (another process started it a moment
    ago) is not waited for here: pymongo waits for its socket to answer.
    """
    paths, created = store_paths(data_dir)
    fd = _open_lock(paths)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        _close_lock(fd)
        return Joined(paths, started_pid=None, created=created)
    except OSError as exc:
        _close_lock(fd)
        raise _lock_error(paths, exc) from None
    if in_process:
        serve_here(paths, fd)
        return Joined(paths, started_pid=None, created=created, serves=True)
    return Joined(paths, started_pid=start_server(paths, fd), created=created)


def _open_lock(paths: StorePaths) -> int:
    try:
        fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise StoreError(
                f"the data directory {paths.dir} is not writable by this user "
                f"(uid {os.geteuid()}): {exc.strerror}; the store needs its lock and socket there"
            ) from None
        raise StoreError(f"cannot open {paths.lock}: {exc}") from None
    _open_lock_fds.add(fd)
    return fd


def _close_lock(fd: int) -> None:
    _open_lock_fds.discard(fd)
    os.close(fd)


def _lock_error(paths: StorePaths, exc: OSError) -> StoreError:
    if exc.errno in _NO_LOCKS:
        return StoreError(
            f"the file system of {paths.dir} has no working file locks ({exc.strerror}); djongo "
            "needs them so that processes sharing the store agree on which one serves it: put "
            "DATA_DIR on a local file system"
        )
    return StoreError(f"cannot lock {paths.lock}: {exc}")


def start_server(paths: StorePaths, lock_fd: int) -> int:
    """Starts the store's server, handing it ``lock_fd`` (which holds the
    store lock and is closed here), and waits until it serves; returns its pid."""
    try:
        ready = _spawn(paths, lock_fd)
    finally:
        # The server holds the lock now (or did not start, and with this
        # last descriptor closed the lock is free again).
        _close_lock(lock_fd)
    line = _read_line(ready, START_TIMEOUT_SECONDS)
    if line.startswith("ok "):
        return int(line.split()[1])
    if line.startswith("error: "):
        raise StoreError(line[len("error: "):])
    if not line:
        raise StoreError(
            f"the store's server did not start within {START_TIMEOUT_SECONDS} s; see {paths.log}")
    raise StoreError(f"the store's server exited while starting; see {paths.log}:\n"
                     f"{_tail(paths.log)}")


def _spawn(paths: StorePaths, lock_fd: int) -> int:
    """Starts ``djongo-server`` for the store; returns the read end of its ready pipe."""
    python = _python_executable()
    try:
        log = os.open(paths.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot open the store server's log {paths.log}: {exc}") from None
    ready_read, ready_write = os.pipe()
    env = dict(os.environ)
    # The server imports this very djongo, wherever it was imported from.
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    env[_LOCK_FD_ENV] = str(lock_fd)
    env[_READY_FD_ENV] = str(ready_write)
    command = [python, "-m", "djongo.store", "--dbpath", str(paths.dir), "--no-tcp",
               "--idle-exit", str(IDLE_EXIT_SECONDS)]
    try:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=paths.dir, env=env,
            pass_fds=(lock_fd, ready_write),
            # Its own session: a Ctrl-C meant for runserver does not stop the
            # store that other processes use.
            start_new_session=True,
        )
    except OSError as exc:
        os.close(ready_read)
        raise StoreError(f"cannot start the store's server ({python}): {exc}") from None
    finally:
        os.close(ready_write)
        os.close(log)
    # Reaped when it exits, whichever process outlives the other.
    threading.Thread(target=process.wait, name="djongo-store-reaper", daemon=True).start()
    return ready_read


def _python_executable() -> str:
    """The interpreter to run the server with: this one, unless this
    process is not a plain Python (uWSGI, mod_wsgi, a frozen app)."""
    for candidate in (sys.executable, getattr(sys, "_base_executable", None)):
        if candidate and "python" in Path(candidate).name.lower() and os.access(candidate, os.X_OK):
            return candidate
    raise StoreError(
        f"this process does not run a Python interpreter that can start the store's server "
        f"(sys.executable is {sys.executable!r}); start it yourself with "
        "`djongo-server --dbpath DATA_DIR --no-tcp`, and the processes will join it"
    )


def _read_line(fd: int, timeout: float) -> str:
    """One line from the ready pipe: '' on timeout, '\\0' if closed without one."""
    deadline = time.monotonic() + timeout
    data = b""
    try:
        while b"\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return ""
            chunk = os.read(fd, 4096)
            if not chunk:
                return data.decode(errors="replace").strip() or "\0"
            data += chunk
    finally:
        os.close(fd)
    return data.split(b"\n", 1)[0].decode(errors="replace").strip()


def _tail(log: Path, lines: int = 5) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --- a store served from this process ----------------------------------------------------

# The stores this process serves itself (``STORE_SERVER: "in-process"``).
_served: dict[Path, StorePaths] = {}
# Set at interpreter exit: from then on this process starts no server.
_exiting = False


def serve_here(paths: StorePaths, lock_fd: int) -> None:
    """Serves the store from threads of this process, which holds its lock
    through ``lock_fd`` (handed over to the server: closed if it fails).

    The server is the one ``djongo-server`` runs, on the same owner-only
    socket, so other processes (and this one's pymongo) join it as usual;
    this process's own ``StoreClient`` runs its statements in the calling
    thread. It stops at interpreter exit, as ``djongo-server`` on SIGTERM.
    """
    _open_lock_fds.discard(lock_fd)
    try:
        _core.serve_in_process(str(paths.dir), lock_fd)
    except _core.EngineError as exc:
        raise StoreError(str(exc)) from None
    with _watch_lock:
        if not _served:
            atexit.register(_stop_serving)
        _served[paths.dir] = paths


def serves(paths: StorePaths) -> bool:
    """Whether this process serves the store itself."""
    return paths.dir in _served


def _stop_serving() -> None:
    """At exit: running statements get their replies, the socket goes, the
    database file is closed, then the lock is released; the other processes'
    watchers start a server of its own for them."""
    global _exiting
    _exiting = True
    for directory in list(_served):
        _core.stop_in_process(str(directory))
        _served.pop(directory, None)


# --- the watcher: a new server when the old one dies --------------------------------------

# The stores this process watches, and those whose watcher runs in it (a
# forked child has the first from its parent, not the second).
_watched: dict[Path, StorePaths] = {}
_watching: set[Path] = set()
_watch_lock = threading.Lock()
# Lock descriptors this process has open: a forked child closes its copies,
# which would otherwise keep the lock held after this process lets it go.
_open_lock_fds: set[int] = set()


def watch(paths: StorePaths) -> None:
    """Makes sure this process watches the store (once per process)."""
    with _watch_lock:
        _watched[paths.dir] = paths
        if paths.dir in _watching:
            return
        _watching.add(paths.dir)
        threading.Thread(target=_watch, args=(paths,), name="djongo-store-watcher",
                         daemon=True).start()


def _watch(paths: StorePaths) -> None:
    while True:
        try:
            fd = _open_lock(paths)
        except StoreError as exc:
            logger.error("djongo: cannot watch the embedded store %s: %s", paths.dir, exc)
            return
        try:
            # Blocks, without the GIL, for as long as a server runs.
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            _close_lock(fd)
            logger.error("djongo: cannot watch the embedded store %s: %s", paths.dir, exc)
            return
        if _exiting:
            # This process is on its way out: a process that stays starts it.
            _close_lock(fd)
            return
        try:
            pid = start_server(paths, fd)
        except StoreError as exc:
            logger.error("djongo: the server of the embedded store %s stopped, and starting a "
                         "new one failed: %s", paths.dir, exc)
            time.sleep(1)
            continue
        logger.warning("djongo: the server of the embedded store %s stopped; this process "
                       "(pid %d) started a new one (pid %d)", paths.dir, os.getpid(), pid)


def _after_fork_in_child() -> None:
    global _watch_lock
    # Any lock descriptor the child inherited is the parent's business: kept
    # open, it would hold the lock for the child's whole life.
    for fd in list(_open_lock_fds):
        try:
            os.close(fd)
        except OSError:
            pass
    _open_lock_fds.clear()
    # A store the parent serves is the parent's: the child closes its copies
    # of the server's descriptors (the lock, the data file that redb locks,
    # the socket and its connections), never uses or drops the inherited
    # engine, and joins through the socket like any other process.
    try:
        _core.after_fork_in_child()
    except _core.EngineError as exc:
        logger.error("djongo: this forked process (pid %d) could not close its copies of the "
                     "store server's descriptors: %s", os.getpid(), exc)
    for paths in _served.values():
        _watched[paths.dir] = paths
    _served.clear()
    # The watcher threads did not come along: the child (a gunicorn or
    # celery worker, say) watches the stores its parent used on its own.
    _watch_lock = threading.Lock()
    _watching.clear()
    for paths in list(_watched.values()):
        watch(paths)


os.register_at_fork(after_in_child=_after_fork_in_child)


# --- djongo-server ------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``djongo-server``: the flags of the cargo binary (``--help``)."""
    import signal

    args = list(sys.argv[1:] if argv is None else argv)
    handed = {}
    for name, env in (("lock_fd", _LOCK_FD_ENV), ("ready_fd", _READY_FD_ENV)):
        value = os.environ.pop(env, None)
        if value is not None:
            handed[name] = int(value)
    # The server handles SIGINT and SIGTERM itself (a clean shutdown).
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    return _core.server_main(args, **handed)


if __name__ == "__main__":
    sys.exit(main())
