"""The DB-API 2.0 module surface Django expects as ``DatabaseWrapper.Database``.

Django's ``DatabaseErrorWrapper`` turns exceptions raised by the cursor into
``django.db`` exceptions by looking up classes of the same name here, so every
error the backend raises is one of these.
"""

apilevel = "2.0"
threadsafety = 1
paramstyle = "format"

# BinaryField values: bytes are stored as BSON binary.
Binary = bytes


class Warning(Exception):  # noqa: A001 - the DB-API name
    pass


class Error(Exception):
    """Carries the server's error labels (``TransientTransactionError``,
    ``UnknownTransactionCommitResult``) and code, when it gave them: they say
    whether running the transaction again may succeed (see djongo.transaction)."""

    def __init__(self, *args: object, labels: frozenset[str] = frozenset(),
                 code: int | None = None) -> None:
        super().__init__(*args)
        self.labels = labels
        self.code = code


class InterfaceError(Error):
    pass


class DatabaseError(Error):
    pass


class DataError(DatabaseError):
    pass


class OperationalError(DatabaseError):
    pass


class IntegrityError(DatabaseError):
    pass


class InternalError(DatabaseError):
    pass


class ProgrammingError(DatabaseError):
    pass


class NotSupportedError(DatabaseError):
    pass

