"""How a settings block chooses its server."""

import socket
import threading
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from djongo import server


def test_no_client_means_the_embedded_engine(tmp_path):
    choice = server.choose_server({"NAME": "blog", "DATA_DIR": str(tmp_path)})
    assert choice.embedded and choice.data_dir == Path(tmp_path).resolve()


def test_client_means_that_server():
    choice = server.choose_server(
        {"NAME": "blog", "CLIENT": {"host": "mongodb://u:secret@db1:27017/?replicaSet=rs0"}})
    assert not choice.embedded
    assert "secret" not in choice.description


def test_unknown_settings_key_is_rejected():
    from djongo.base import DatabaseWrapper

    wrapper = DatabaseWrapper({"ENGINE": "djongo", "NAME": "x", "ENFORCE_SCHEME": True})
    with pytest.raises(ImproperlyConfigured, match="ENFORCE_SCHEME"):
        wrapper.get_connection_params()


def test_legacy_localhost_default_is_never_silently_replaced(tmp_path, monkeypatch):
    """A Djongo user relying on localhost:27017 gets an error, not an empty database."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    monkeypatch.setattr(server, "LEGACY_DEFAULT_HOST", ("127.0.0.1", listener.getsockname()[1]))
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                listener.accept()[0].close()
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        with pytest.raises(ImproperlyConfigured, match="localhost:27017"):
            server.start_embedded(tmp_path / "new-data")
        assert not (tmp_path / "new-data").exists()
    finally:
        stop.set()
        thread.join()
        listener.close()
