import pytest


@pytest.fixture
def mongo_db(db):
    """The pymongo Database behind the test database, for checking what was stored."""
    from django.db import connection

    return connection.mongo_database
