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
