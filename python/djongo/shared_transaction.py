"""One transaction, two clients: pymongo and the embedded store's client.

A Django connection's transaction is a pymongo ``ClientSession``'s: pymongo
starts it lazily (``start_transaction`` only notes it; the first command
carries ``startTransaction``), and ``mongo_*`` calls, GridFS and the
executor's schema statements run in it. Statements that the store's client
sends (``djongo.transport``) join the same transaction by sending the
session's id and txnNumber. Whichever client sends the first command starts
it on the server, so the other must know: the store's client does here what
pymongo does when it applies a session to a command, moving the session's
state from *starting* to *in progress*.

On the embedded store the transaction is ended (``commit``, ``abort``) by
the store's client too, through the store's socket or, when this process
serves the store itself (``STORE_SERVER: "in-process"``), in the calling
thread, instead of a pymongo round trip of its own: the same command and
session fields, the same retry and error labels, and the session left in
the state pymongo's own ``commit_transaction``/``abort_transaction`` would
leave it in, so pymongo carries on with the session as if it had sent the
command itself.

That state is pymongo's own (``ClientSession._transaction``), not public
API; this module is the one place that touches it.
``tests/test_store_client.py`` and ``tests/test_store_in_process.py`` check
that both orders (pymongo first, the store's client first) make one
transaction, committed or rolled back whole; ``tests/test_transaction_ends.py``
that ending it here comes to what pymongo's ending comes to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pymongo.client_session import ClientSession
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError
from pymongo.write_concern import WriteConcern

try:  # pymongo >= 4.10
    from pymongo.client_session_shared import _UNKNOWN_COMMIT_ERROR_CODES, _TxnState
    from pymongo.helpers_shared import _raise_write_concern_error
except ImportError:  # pragma: no cover - older pymongo
    from pymongo.client_session import (  # type: ignore[attr-defined,no-redef]
        _UNKNOWN_COMMIT_ERROR_CODES,
        _TxnState,
    )
    from pymongo.helpers import _raise_write_concern_error  # type: ignore[no-redef]

#: Sends a ``commitTransaction``/``abortTransaction`` command in the session's
#: transaction (the given txnNumber); returns its reply or raises the pymongo
#: exception of a failed one.
Send = Callable[[dict[str, Any], int], dict[str, Any]]


def statement(session: ClientSession) -> tuple[int, bool]:
    """For a statement the store's client sends in ``session``'s (open)
    transaction: its txnNumber, and whether it starts the transaction on the
    server (then pymongo's next command must not start it again)."""
    transaction = session._transaction
    starting = transaction.state == _TxnState.STARTING
    if starting:
        transaction.state = _TxnState.IN_PROGRESS
    return int(session._server_session.transaction_id), starting


def completed(session: ClientSession) -> None:
    """A statement the store's client sent in ``session``'s transaction
    succeeded. pymongo notes the same after each command of a transaction
    (4.20's ``has_completed_command``): a later command that the server
    refuses as overloaded (``SystemOverloadedError``) is retried as the
    transaction's first one, with ``startTransaction``, only while none has
    completed; sent again after ours began it, it would fail."""
    transaction = session._transaction
    if hasattr(transaction, "has_completed_command"):
        transaction.has_completed_command = True


def started(session: ClientSession) -> bool:
    """Whether ``session``'s (open) transaction has reached the server: its
    first command has been sent, so its snapshot is taken."""
    return session._transaction.state != _TxnState.STARTING


def commit(session: ClientSession, send: Send) -> None:
    """Commits ``session``'s transaction through ``send``, as
    ``session.commit_transaction()`` would through pymongo: nothing is sent
    for a transaction that never reached the server; a failure whose outcome
    is unknown is labelled ``UnknownTransactionCommitResult``; the session's
    transaction is over whatever happened."""
    transaction = session._transaction
    if transaction.state is not _TxnState.IN_PROGRESS:
        # Nothing to send (or a misuse pymongo reports): pymongo's own answer.
        session.commit_transaction()
        return
    try:
        _send_with_retry(session, "commitTransaction", send)
    except ConnectionFailure as exc:
        exc._remove_error_label("TransientTransactionError")
        exc._add_error_label("UnknownTransactionCommitResult")
        raise
    except OperationFailure as exc:
        # WTimeoutError included; other failures carry the server's labels.
        if exc.code in _UNKNOWN_COMMIT_ERROR_CODES:
            exc._add_error_label("UnknownTransactionCommitResult")
        raise
    finally:
        transaction.state = _TxnState.COMMITTED


def abort(session: ClientSession, send: Send) -> None:
    """Aborts ``session``'s transaction through ``send``, as
    ``session.abort_transaction()`` would through pymongo: a failure to abort
    is ignored (the server aborts an abandoned transaction itself), and the
    session's transaction is over."""
    transaction = session._transaction
    if transaction.state is not _TxnState.IN_PROGRESS:
        session.abort_transaction()
        return
    try:
        _send_with_retry(session, "abortTransaction", send)
    except (OperationFailure, ConnectionFailure):
        pass
    finally:
        transaction.state = _TxnState.ABORTED
        session._unpin()


def _send_with_retry(session: ClientSession, name: str, send: Send) -> dict[str, Any]:
    """Sends ``name``, and once more after a retryable failure, as drivers
    end a transaction (the second commit asks for a majority write concern)."""
    try:
        return _send(session, name, send)
    except PyMongoError as exc:
        if not (isinstance(exc, ConnectionFailure) or exc.has_error_label("RetryableWriteError")):
            raise
    return _send(session, name, send)


def _send(session: ClientSession, name: str, send: Send) -> dict[str, Any]:
    transaction = session._transaction
    transaction.attempt += 1
    opts = transaction.opts
    concern = opts.write_concern if opts is not None else None
    command: dict[str, Any] = {name: 1}
    if name == "commitTransaction":
        if opts is not None and opts.max_commit_time_ms:
            command["maxTimeMS"] = opts.max_commit_time_ms
        if transaction.attempt > 1:
            document = concern.document if concern is not None else {}
            document["w"] = "majority"
            document.setdefault("wtimeout", 10000)
            concern = WriteConcern(**document)
    if concern is not None and not concern.is_server_default:
        command["writeConcern"] = concern.document
    reply = send(command, int(session._server_session.transaction_id))
    error = reply.get("writeConcernError")
    if error:
        # Applied, but not as durably as asked: raised as pymongo raises it.
        labels = reply.get("errorLabels")
        _raise_write_concern_error({**error, **({"errorLabels": labels} if labels else {})})
    return reply
