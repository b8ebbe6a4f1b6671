"""A DB-API cursor: SQL text and parameters in, rows out.

``execute`` compiles the SQL in Rust (cached by SQL text), runs the plan
through the executor, and keeps the rows for ``fetch*``. Every failure is
raised as one of ``djongo.database``'s exception classes, which Django maps to
its own.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any, TypeVar

from bson.errors import BSONError
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    ConnectionFailure,
    DocumentTooLarge,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
    WriteError,
)

from . import _core, database
from .executor import Executor, Result
from .validator import describe_failure

if TYPE_CHECKING:
    from .connection import Connection

logger = logging.getLogger("djongo.sql")

T = TypeVar("T")


class Cursor:
    arraysize = 100

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._result = Result()
        self._rows: Iterator[tuple] = iter(())
        self._closed = False
        # The statement as sent, for DatabaseOperations.last_executed_query:
        # an execute_wrapper may have changed the SQL Django wrote.
        self.last_sql: str | None = None
        self.last_params: tuple = ()

    # -- DB-API attributes --------------------------------------------------

    @property
    def rowcount(self) -> int:
        return self._result.rowcount

    @property
    def lastrowid(self) -> Any:
        return self._result.lastrowid

    @property
    def description(self):
        if not self._result.columns:
            return None
        return [(name, None, None, None, None, None, None) for name in self._result.columns]

    # -- execution ------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> Cursor:
        if self._closed:
            raise database.ProgrammingError("cannot execute on a closed cursor")
        self.last_sql = sql
        if params is None:
            params = ()
        elif type(params) is not tuple and type(params) is not list and isinstance(params, Mapping):
            # Kept as given for last_executed_query.
            self.last_params = params
            sql, params = positional(sql, params)
            self._run(sql, tuple(params))
            return self
        self.last_params = params = tuple(params)
        self._run(sql, params)
        return self

    def _run(self, sql: str, params: tuple) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s; args=%r", sql, params)
        plan = compile_sql(sql)
        try:
            self._result = Executor(self.connection).execute(plan, params)
        except Exception as exc:
            error = _translated(exc)
            if error is None:
                raise
            raise error from exc
        self._rows = self._result.rows

    def executemany(self, sql: str, param_list) -> Cursor:
        total = 0
        for params in param_list:
            self.execute(sql, params)
            total += max(self._result.rowcount, 0)
        self._result.rowcount = total
        return self

    # The rows may come batch by batch from the server (a generator): its
    # failures are translated as execute's are.

    def fetchone(self) -> tuple | None:
        try:
            return next(self._rows, None)
        except Exception as exc:
            error = _translated(exc)
            if error is None:
                raise
            raise error from exc

    def fetchmany(self, size: int | None = None) -> list[tuple]:
        try:
            return list(islice(self._rows, size or self.arraysize))
        except Exception as exc:
            error = _translated(exc)
            if error is None:
                raise
            raise error from exc

    def fetchall(self) -> list[tuple]:
        try:
            return list(self._rows)
        except Exception as exc:
            error = _translated(exc)
            if error is None:
                raise
            raise error from exc

    def __iter__(self):
        return self

    def __next__(self) -> tuple:
        row = self.fetchone()
        if row is None:
            raise StopIteration
        return row

    def close(self) -> None:
        self._rows = iter(())
        self._closed = True

    def setinputsizes(self, sizes) -> None:
        pass

    def setoutputsize(self, size, column=None) -> None:
        pass


# `%(name)s` markers outside quotes (quoted text is copied as it is).
_NAMED = re.compile(r"""'(?:[^']|'')*'?|"(?:[^"]|"")*"?|`[^`]*`?|%\(([^)]*)\)s|%%""")


def positional(sql: str, params: Mapping[str, Any]) -> tuple[str, tuple]:
    """pyformat SQL (``%(name)s``, DB-API's other style) as ``%s`` SQL and a
    tuple of parameters in marker order."""
    if not isinstance(sql, str):
        return sql, ()
    values: list[Any] = []

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)
        try:
            values.append(params[name])
        except KeyError:
            raise database.ProgrammingError(f"no value for the parameter %({name})s") from None
        return "%s"

    return _NAMED.sub(replace, sql), tuple(values)


def compile_sql(sql: str) -> dict[str, Any]:
    if not isinstance(sql, str):
        raise database.ProgrammingError(f"SQL must be a str, not {type(sql).__name__}")
    try:
        return _core.compile(sql)
    except _core.UnsupportedError as exc:
        raise database.NotSupportedError(str(exc)) from None
    except _core.InvalidValueError as exc:
        raise database.DataError(str(exc)) from None
    except _core.CompileError as exc:
        raise database.ProgrammingError(str(exc)) from None
    except UnicodeEncodeError as exc:
        raise database.DataError(_unencodable("the SQL text", exc)) from None
    except ValueError as exc:
        # A plan the binding layer could not convert: a compiler bug.
        raise database.InternalError(f"the compiler failed on this statement: {exc}") from None


def _unencodable(what: str, exc: UnicodeEncodeError) -> str:
    char = exc.object[exc.start:exc.end] if isinstance(exc.object, str) else ""
    return (f"{what} cannot be stored: it holds {char!r} at position {exc.start}, "
            f"which is not valid Unicode text (UTF-8 has no {exc.reason.split()[0]})")


class translate_errors:
    """Re-raises the driver's and the encoder's exceptions as the DB-API
    classes Django understands: nothing else escapes a statement."""

    def __init__(self, sql: str | None) -> None:
        self.sql = sql

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        error = _translated(exc) if isinstance(exc, Exception) else None
        if error is None:
            return False
        raise error from exc


def _translated(exc: Exception) -> database.Error | None:
    """``exc`` as the DB-API exception Django understands, or None when it is
    one already or has none (it is then raised as it is)."""
    if isinstance(exc, database.Error):
        return None
    translated = _translate(exc)
    if translated is not None and isinstance(exc, PyMongoError):
        translated.labels = frozenset(
            label for label in _LABELS if exc.has_error_label(label))
        translated.code = getattr(exc, "code", None)
    return translated


# The labels that tell a caller whether to run a transaction again.
_LABELS = ("TransientTransactionError", "UnknownTransactionCommitResult")


def django_errors(method: Callable[..., T]) -> Callable[..., T]:
    """Runs a method of a backend class (introspection, operations, creation)
    that reaches the server outside a cursor: the driver's exceptions become
    Django's (``django.db.OperationalError``...), as a cursor's do."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self.connection.wrap_database_errors, translate_errors(None):
            return method(self, *args, **kwargs)

    return wrapper


def _translate(exc: BaseException) -> database.Error | None:
    if isinstance(exc, DocumentTooLarge):
        return database.DataError(
            f"a document or command is larger than MongoDB's 16 MiB limit: {exc}")
    if isinstance(exc, BSONError):
        return database.DataError(f"a value cannot be stored in MongoDB: {exc}")
    if isinstance(exc, UnicodeEncodeError):
        return database.DataError(_unencodable("a value", exc))
    if isinstance(exc, OverflowError):
        # Python ints beyond 64 bits (psycopg: "integer out of range").
        return database.DataError(f"a value is out of range: {exc}")
    if isinstance(exc, RecursionError):
        return database.DataError("a value is nested too deeply to be stored "
                                  "(MongoDB allows 100 levels)")
    if not isinstance(exc, PyMongoError):
        return None
    if isinstance(exc, DuplicateKeyError):
        return database.IntegrityError(_duplicate_message(exc.details or {}, str(exc)))
    if getattr(exc, "code", None) == DOCUMENT_VALIDATION_FAILURE:
        return database.IntegrityError(describe_failure(exc.details or {}))
    if isinstance(exc, BulkWriteError):
        errors = (exc.details or {}).get("writeErrors") or []
        if errors and errors[0].get("code") == DOCUMENT_VALIDATION_FAILURE:
            return database.IntegrityError(describe_failure(errors[0]))
        if errors and errors[0].get("code") == 11000:
            return database.IntegrityError(_duplicate_message(errors[0], errors[0].get("errmsg")))
        if errors and _is_data_error(errors[0].get("code"), errors[0].get("errmsg")):
            return database.DataError(str(errors[0].get("errmsg")))
        return database.DatabaseError(str(exc))
    if isinstance(exc, (ServerSelectionTimeoutError, AutoReconnect, ConnectionFailure)):
        return database.OperationalError(f"cannot reach the MongoDB server: {exc}")
    if isinstance(exc, OperationFailure) and _is_data_error(exc.code, str(exc)):
        return database.DataError(str(exc))
    if isinstance(exc, WriteError):
        return database.DatabaseError(str(exc))
    if isinstance(exc, OperationFailure):
        if exc.code == 11000:
            return database.IntegrityError(_duplicate_message(exc.details or {}, str(exc)))
        # Write conflict, no such transaction, transaction aborted, lock
        # timeout; authentication failed and unauthorized (as psycopg reports
        # a refused login).
        if exc.code in (112, 251, 244, 24, 18, 13):
            return database.OperationalError(str(exc))
        # CommandNotSupported: what the server does not implement.
        if exc.code == 115:
            return database.NotSupportedError(str(exc))
        return database.DatabaseError(str(exc))
    return database.DatabaseError(str(exc))


# A write refused by the collection's validator (a CHECK constraint, the
# model's $jsonSchema): IntegrityError, as a CHECK violation is in SQL.
DOCUMENT_VALIDATION_FAILURE = 121

# Server errors about the data itself (psycopg's DataError class): a document
# over 16 MiB (10334 BSONObjectTooLarge; 17419/17420 an update's result), nested
# too deeply (15 Overflow), '$' keys where MongoDB stores none (52) and an
# invalid _id (53).
_DATA_ERROR_CODES = frozenset({10334, 17419, 17420, 15, 52, 53})


def _is_data_error(code: Any, message: Any) -> bool:
    # BadValue (2) is also what mongod answers for "object to insert too large".
    return code in _DATA_ERROR_CODES or (code == 2 and "too large" in str(message))


def _duplicate_message(details: dict, fallback: str | None) -> str:
    key = details.get("keyValue")
    if key:
        shown = ", ".join(f"{k}={v!r}" for k, v in key.items())
        return f"UNIQUE constraint failed: duplicate key {shown}"
    return f"UNIQUE constraint failed: {fallback}"
