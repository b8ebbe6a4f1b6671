"""Helpers for tests where several processes share one embedded store."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pymongo

ROOT = Path(__file__).resolve().parents[1]

SETUP = """
import logging, os, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
import django
django.setup()
from django.core.management import call_command
from django.db import transaction
from tests.blogapp.models import Author
"""


def django_env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "DJONGO_TEST_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}


def run_django(data_dir: Path, body: str, timeout: float = 120,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Runs ``body`` in a new Django process on the store in ``data_dir``
    (``env``: more environment, e.g. ``DJONGO_TEST_MONGODB_URI``)."""
    return subprocess.run(
        [sys.executable, "-c", SETUP + textwrap.dedent(body)],
        cwd=ROOT, env={**django_env(data_dir), **(env or {})}, capture_output=True, text=True,
        timeout=timeout,
    )


def execute_elsewhere(sql: str) -> None:
    """Runs ``sql`` through ``cursor.execute()`` in another Django process on
    this process's store (a migration run from a second shell, say), and
    fails the test if it failed. Called from inside a ``run_django`` body."""
    from django.conf import settings

    other = run_django(Path(settings.DATA_DIR), f"""
        from django.db import connection
        with connection.cursor() as c:
            c.execute({sql!r})
    """)
    assert other.returncode == 0, other.stderr


def start_django(data_dir: Path, body: str, **popen) -> subprocess.Popen:
    """Starts ``body`` in a new Django process, without waiting for it."""
    return subprocess.Popen(
        [sys.executable, "-c", SETUP + textwrap.dedent(body)],
        cwd=ROOT, env=django_env(data_dir), text=True, **popen,
    )


def store_client(data_dir: Path, **options) -> pymongo.MongoClient:
    """pymongo on the store's own socket (a test's view from outside Django)."""
    from djongo import store
    from djongo.server import store_uri

    paths, _ = store.store_paths(data_dir)
    options.setdefault("serverSelectionTimeoutMS", 20_000)
    return pymongo.MongoClient(store_uri(paths.socket), directConnection=True, **options)


def server_pid(data_dir: Path) -> int:
    """The pid of the process serving the store (it says so in hello)."""
    with store_client(data_dir) as client:
        return int(client.admin.command("hello")["djongo"]["pid"])


def wait_until_gone(pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        # A child of this process lingers as a zombie until reaped.
        try:
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                return
        except ChildProcessError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"process {pid} is still alive")
