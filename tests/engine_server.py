"""Runs the standalone ``djongo-server`` binary for tests.

The binary is built by cargo (``cargo build -p djongo-server``); nothing here
builds it, and a missing binary fails the test rather than skipping it.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import pymongo
import pytest

ROOT = Path(__file__).resolve().parent.parent


def binary() -> Path:
    for profile in ("debug", "release"):
        candidate = ROOT / "target" / profile / "djongo-server"
        if candidate.exists():
            return candidate
    pytest.fail("djongo-server binary not found under target/debug or target/release; "
                "run `cargo build -p djongo-server` first")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One ``djongo-server`` process on a loopback port (or as ``args`` say)."""

    def __init__(self, dbpath: Path, *args: str):
        self.dbpath = dbpath
        self.port = free_port()
        self.args = list(args)
        self.proc: subprocess.Popen | None = None

    def start(self) -> Server:
        self.proc = subprocess.Popen(
            [str(binary()), "--dbpath", str(self.dbpath), "--port", str(self.port), *self.args],
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(self.proc.stderr.read().decode()) from None
                time.sleep(0.05)
        raise RuntimeError("djongo-server did not start listening")

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def client(self, **options) -> pymongo.MongoClient:
        options.setdefault("serverSelectionTimeoutMS", 5000)
        return pymongo.MongoClient(self.uri, **options)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)


class SocketServer:
    """The installed ``djongo-server`` command on a Unix socket only."""

    def __init__(self, dbpath: str, socket_path: str, *args: str):
        self.dbpath = dbpath
        self.socket = socket_path
        self.args = list(args)
        self.proc: subprocess.Popen | None = None

    def start(self) -> SocketServer:
        import shutil
        import sys

        command = shutil.which("djongo-server", path=str(Path(sys.executable).parent))
        if command is None:
            pytest.fail("the djongo-server command is not installed next to this Python")
        self.proc = subprocess.Popen(
            [command, "--dbpath", self.dbpath, "--unix-socket", self.socket, *self.args],
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(self.socket)
                    return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(self.proc.stderr.read().decode()) from None
                time.sleep(0.05)
        raise RuntimeError("djongo-server did not start listening")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
