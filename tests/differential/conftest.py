"""Servers for the differential tests: FerretDB 1.24 (SQLite backend) and our embedded engine.

These tests are opt-in. pyproject.toml's addopts carry `--ignore=tests/differential`, so a
plain `pytest` never collects this directory; run them explicitly with

    scripts/ferretdb-setup && DJONGO_DIFFERENTIAL=1 .venv/bin/python -m pytest tests/differential

Once asked for, nothing here skips: a missing FerretDB binary, a server that does not start,
or DJONGO_DIFFERENTIAL unset is an error with a message saying what to do.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pymongo
import pytest

ROOT = Path(__file__).resolve().parents[2]
FERRETDB_VERSION = "v1.24.2"


@pytest.fixture(scope="session", autouse=True)
def _require_differential_env():
    # Guard against running these by accident (e.g. an addopts override that drops the
    # --ignore): they need FerretDB and take a minute. Fail, never skip.
    if os.environ.get("DJONGO_DIFFERENTIAL") != "1":
        pytest.fail("the differential tests run only with DJONGO_DIFFERENTIAL=1 "
                    "(after scripts/ferretdb-setup); see README.md, "
                    "'Differential testing against FerretDB'", pytrace=False)


def _ferretdb_binary() -> Path:
    explicit = os.environ.get("FERRETDB_BIN")
    candidate = Path(explicit) if explicit else ROOT / ".cache" / "bin" / "ferretdb"
    if not candidate.exists():
        pytest.fail(f"FerretDB binary not found at {candidate}; run scripts/ferretdb-setup "
                    "(or set FERRETDB_BIN)", pytrace=False)
    out = subprocess.run([str(candidate), "--version"], capture_output=True, text=True,
                         timeout=30)
    if FERRETDB_VERSION not in out.stdout + out.stderr:
        pytest.fail(f"{candidate} --version does not report {FERRETDB_VERSION}:\n"
                    f"{out.stdout}{out.stderr}", pytrace=False)
    return candidate


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ping(uri: str, what: str, proc=None, log: Path | None = None,
               timeout: float = 30.0) -> pymongo.MongoClient:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            text = log.read_text(errors="replace") if log else ""
            pytest.fail(f"{what} exited with status {proc.returncode} while starting:\n"
                        f"{text[-4000:]}", pytrace=False)
        client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=1000,
                                     directConnection=True)
        try:
            client.admin.command("ping")
            return client
        except Exception as e:  # noqa: BLE001 - any failure means "not up yet"
            last = e
            client.close()
            time.sleep(0.2)
    text = log.read_text(errors="replace")[-4000:] if log else ""
    pytest.fail(f"{what} did not answer ping at {uri} within {timeout:.0f}s: {last}\n{text}",
                pytrace=False)


@pytest.fixture(scope="session")
def workdir():
    path = Path(tempfile.mkdtemp(prefix="djongo-differential-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def ferretdb(workdir):
    """A FerretDB 1.24 (SQLite backend) on a free loopback port; a pymongo client to it."""
    binary = _ferretdb_binary()
    data = workdir / "ferretdb-data"
    state = workdir / "ferretdb-state"
    data.mkdir()
    state.mkdir()
    port = _free_port()
    log = workdir / "ferretdb.log"
    with open(log, "wb") as logf:
        proc = subprocess.Popen(
            [str(binary),
             "--handler=sqlite",
             f"--sqlite-url=file:{data}/",
             f"--listen-addr=127.0.0.1:{port}",
             f"--state-dir={state}",
             "--debug-addr=-",          # no debug HTTP listener (its default port may clash)
             "--telemetry=disable",
             "--log-level=error"],
            stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        client = _wait_ping(f"mongodb://127.0.0.1:{port}/", "FerretDB", proc, log)
        yield client
        client.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def ours(workdir):
    """Our embedded engine (djongo._core.start_engine) on loopback; a pymongo client to it."""
    try:
        from djongo import _core
    except ImportError as e:
        pytest.fail(f"djongo._core is not importable ({e}); run scripts/setup", pytrace=False)

    data = workdir / "djongo-data"
    data.mkdir()
    address = _core.start_engine(str(data))
    try:
        client = _wait_ping(f"mongodb://{address}/", "the djongo engine")
        yield client
        client.close()
    finally:
        _core.stop_engine(str(data))
