import pytest


class InTransaction:
    """A pymongo Database view that reads inside the test's transaction.

    pytest-django runs each test in a transaction; documents it wrote are
    invisible outside that transaction until commit, as they should be.
    """

    def __init__(self, connection):
        self._connection = connection

    def __getitem__(self, name):
        return _Collection(self._connection, self._connection.database[name])

    def list_collection_names(self):
        return self._connection.database.list_collection_names(
            session=self._connection.session_for_statement())


class _Collection:
    def __init__(self, connection, collection):
        self._connection = connection
        self._collection = collection

    def __getattr__(self, name):
        method = getattr(self._collection, name)

        def call(*args, **kwargs):
            kwargs.setdefault("session", self._connection.session_for_statement())
            return method(*args, **kwargs)

        return call


@pytest.fixture
def mongo_db(db):
    """The test database as pymongo sees it, inside the test's transaction."""
    from django.db import connection

    connection.ensure_connection()
    return InTransaction(connection.connection)


# -- the ORM on the embedded engine and on a standalone djongo-server ------------------------

@pytest.fixture(scope="session")
def standalone_server():
    """``djongo-server`` on the Unix socket that the ``standalone`` database's
    CLIENT names (tests/settings.py), for the session."""
    from django.conf import settings

    from tests.engine_server import SocketServer

    server = SocketServer(settings.STANDALONE_DATA_DIR, settings.STANDALONE_SOCKET).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def django_db_setup(standalone_server, django_db_setup):
    """pytest-django's, once the standalone server runs (test databases
    are created on it too)."""
    yield


@pytest.fixture(params=["default", "standalone"], ids=["embedded", "standalone-server"])
def server(request):
    """The database alias a test runs on: the embedded engine (default), or a
    standalone djongo-server reached through ``CLIENT: {"host": ...}``."""
    return request.param


@pytest.fixture
def commands():
    """The commands the backend sends during the test, as (name, command) pairs."""
    from djongo.debug import capture_commands

    with capture_commands() as sent:
        yield sent


@pytest.fixture(params=["embedded", "standalone-server"])
def default_server(request):
    """Runs a test written for the ``default`` database twice: on the
    embedded engine, and with ``default`` pointing at the standalone
    djongo-server's connection (the test's database marker must list
    ``standalone`` too, so that its test database is set up)."""
    if request.param == "embedded":
        yield "default"
        return
    from django.db import connections

    original = connections["default"]
    connections["default"] = connections["standalone"]
    try:
        yield "standalone"
    finally:
        connections["default"] = original
