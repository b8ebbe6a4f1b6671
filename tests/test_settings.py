"""How a settings block chooses its server."""

import socket
import threading
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test.utils import isolate_apps
from djongo import server


def wrapper_for(settings_dict: dict, alias: str):
    """A connection for a settings block, with Django's defaults filled in."""
    from django.db import connections
    from djongo.base import DatabaseWrapper

    filled = connections.configure_settings({"default": {}, alias: settings_dict})[alias]
    return DatabaseWrapper(filled, alias=alias)


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


def test_empty_name_is_a_clear_error():
    from djongo.base import DatabaseWrapper

    for name in ("", None):
        wrapper = DatabaseWrapper({"ENGINE": "djongo", "NAME": name})
        with pytest.raises(ImproperlyConfigured, match="NAME"):
            wrapper.get_connection_params()


@pytest.fixture
def recorded_clients(monkeypatch):
    """MongoClient replaced by a recorder: what djongo passes, nothing connects."""
    calls = []

    class Recorder:
        def __init__(self, **kwargs):
            calls.append(kwargs)

    monkeypatch.setattr(server, "MongoClient", Recorder)
    monkeypatch.setattr(server, "_clients", {})
    return calls


def test_every_client_key_reaches_mongoclient(recorded_clients):
    client = {
        "host": "mongodb://db1.example,db2.example/?replicaSet=rs0",
        "port": 27017,
        "username": "db-username",
        "password": "password",
        "authSource": "admin",
        "authMechanism": "SCRAM-SHA-256",
        "tls": True,
        "tlsCAFile": "/etc/ssl/ca.pem",
        "tlsCertificateKeyFile": "/etc/ssl/client.pem",
        "tlsAllowInvalidHostnames": False,
        "readPreference": "secondaryPreferred",
        "w": "majority",
        "serverSelectionTimeoutMS": 2000,
    }
    server.get_client(server.choose_server({"NAME": "blog", "CLIENT": client}))
    [kwargs] = recorded_clients
    listeners = kwargs.pop("event_listeners")
    assert kwargs == client
    assert [type(x) for x in listeners] == [server.CommandLogger]


def test_users_own_event_listeners_are_kept(recorded_clients):
    from pymongo import monitoring

    class Mine(monitoring.CommandListener):
        def started(self, event): pass
        def succeeded(self, event): pass
        def failed(self, event): pass

    mine = Mine()
    server.get_client(server.choose_server(
        {"NAME": "blog", "CLIENT": {"host": "mongodb://db1", "event_listeners": [mine]}}))
    assert recorded_clients[0]["event_listeners"][0] is mine


def test_django_host_and_port_keys_mean_that_server(recorded_clients):
    server.get_client(server.choose_server({"NAME": "blog", "HOST": "db1", "PORT": "27018"}))
    assert (recorded_clients[0]["host"], recorded_clients[0]["port"]) == ("db1", 27018)


@pytest.fixture
def restore_djongo_logging():
    import logging

    loggers = [logging.getLogger(n) for n in ("djongo", "djongo.sql", "djongo.mongo")]
    saved = [(lg.level, lg.propagate, list(lg.handlers)) for lg in loggers]
    yield
    for lg, (level, propagate, handlers) in zip(loggers, saved, strict=True):
        lg.setLevel(level)
        lg.propagate = propagate
        lg.handlers[:] = handlers


@pytest.mark.django_db
def test_logging_key_is_a_dictconfig_for_the_djongo_logger(tmp_path, restore_djongo_logging):
    import logging

    from django.conf import settings

    wrapper = wrapper_for({
        "ENGINE": "djongo", "NAME": "logged", "DATA_DIR": settings.DATABASES["default"]["DATA_DIR"],
        # As in Djongo's documentation, 'propogate' typo included: dictConfig ignores it.
        "LOGGING": {"version": 1, "loggers": {"djongo": {"level": "DEBUG", "propogate": False}}},
    }, alias="logged")
    wrapper.ensure_connection()
    try:
        assert logging.getLogger("djongo").level == logging.DEBUG
    finally:
        wrapper.close()


@pytest.mark.django_db
def test_debug_logs_each_sql_statement_and_its_mongodb_command(caplog):
    import logging

    from tests.blogapp.models import Author

    with caplog.at_level(logging.DEBUG, logger="djongo"):
        list(Author.objects.filter(name="Logged"))
    messages = [(r.name, r.getMessage()) for r in caplog.records]
    sql = [m for name, m in messages if name == "djongo.sql"]
    commands = [m for name, m in messages if name == "djongo.mongo"]
    assert any('FROM "blogapp_author"' in m and "'Logged'" in m for m in sql)
    assert any(".find: " in m and '"find": "blogapp_author"' in m and '"Logged"' in m
               for m in commands)


@pytest.fixture
def server_with_user(tmp_path):
    from tests.test_engine_server import Server

    started = Server(tmp_path / "auth-data", "--user", "alice:s3cret").start()
    yield started
    started.stop()


def _wrapper(port: int, **client):
    return wrapper_for({"ENGINE": "djongo", "NAME": "authdb", "CLIENT": {
        "host": "127.0.0.1", "port": port, "serverSelectionTimeoutMS": 3000, **client,
    }}, alias="auth")


@pytest.mark.django_db
def test_client_credentials_authenticate_with_scram_sha_256(server_with_user):
    wrapper = _wrapper(server_with_user.port, username="alice", password="s3cret",
                       authSource="admin", authMechanism="SCRAM-SHA-256")
    try:
        with wrapper.cursor() as cursor:
            cursor.execute("INSERT INTO notes (id, body) VALUES (%s, %s)", [1, "hello"])
            cursor.execute("SELECT body FROM notes WHERE id = %s", [1])
            assert cursor.fetchall() == [("hello",)]
    finally:
        wrapper.close()


@pytest.mark.django_db
def test_wrong_client_password_is_refused(server_with_user):
    from django.db import OperationalError

    wrapper = _wrapper(server_with_user.port, username="alice", password="wrong",
                       authSource="admin", authMechanism="SCRAM-SHA-256")
    try:
        with pytest.raises(OperationalError, match="[Aa]uthentication failed"):
            with wrapper.cursor() as cursor:
                cursor.execute("SELECT body FROM notes")
                cursor.fetchall()
    finally:
        wrapper.close()


@pytest.mark.django_db
def test_without_credentials_the_server_refuses(server_with_user):
    from django.db import OperationalError

    wrapper = _wrapper(server_with_user.port)
    try:
        with pytest.raises(OperationalError, match="requires authentication"):
            with wrapper.cursor() as cursor:
                cursor.execute("SELECT body FROM notes")
                cursor.fetchall()
    finally:
        wrapper.close()


class _StandaloneClient:
    """A MongoClient stand-in for a server without transactions (no setName in hello)."""

    def __init__(self):
        self.admin = self
        self.sessions = 0

    def command(self, name):
        assert name == "hello"
        return {"isWritablePrimary": True, "maxWireVersion": 21}

    def get_database(self, name, **kwargs):
        return None

    def start_session(self):
        self.sessions += 1
        raise AssertionError("no session may be started on a standalone server")


def test_a_standalone_server_runs_atomic_blocks_without_transactions(caplog):
    """A standalone MongoDB (or FerretDB 1.x) refuses transactions: run as autocommit, say so."""
    from djongo.connection import Connection

    connection = Connection(_StandaloneClient(), "blog", enforce_schema=False)
    connection.set_autocommit(False)
    with caplog.at_level("WARNING", logger="djongo"):
        assert connection.session_for_statement() is None
    assert not connection.supports_transactions
    assert "no transactions" in caplog.text
    connection.commit()
    connection.rollback()


@pytest.mark.django_db
def test_the_embedded_engine_has_transactions():
    from django.db import connection

    assert connection.features.supports_transactions


@isolate_apps("tests.blogapp")
def test_a_column_mongodb_would_read_as_a_path_or_operator_fails_the_checks():
    from django.db import connection, models

    class Dotted(models.Model):
        plain = models.IntegerField(db_column="fine_name")
        dotted = models.IntegerField(db_column="a.b")
        dollar = models.IntegerField(db_column="$where")
        owner = models.ForeignKey("auth.User", models.CASCADE, db_column="owner.id")

        class Meta:
            app_label = "blogapp"

    errors = [e for f in Dotted._meta.local_fields
              for e in connection.validation.check_field(f)]
    assert [(e.id, e.obj.name) for e in errors] == [
        ("djongo.E004", "dotted"), ("djongo.E004", "dollar"), ("djongo.E004", "owner")]
    assert "'a.b'" in errors[0].msg
