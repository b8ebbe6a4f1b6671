"""One transaction, two clients: pymongo and the embedded store's client.

A Django connection's transaction is a pymongo ``ClientSession``'s: pymongo
starts it lazily (``start_transaction`` only notes it; the first command
carries ``startTransaction``), commits and aborts it, and ``mongo_*`` calls,
GridFS and the executor's schema statements run in it. Statements that the
store's client sends (``djongo.transport``) join the same transaction by
sending the session's id and txnNumber. Whichever client sends the first
command starts it on the server, so the other must know: the store's client
does here what pymongo does when it applies a session to a command, moving
the session's state from *starting* to *in progress*.

That state is pymongo's own (``ClientSession._transaction``), not public
API; this module is the one place that touches it, and
``tests/test_store_client.py`` checks that both orders (pymongo first, the
store's client first) make one transaction, committed or rolled back whole.
"""

from __future__ import annotations

from pymongo.client_session import ClientSession

try:  # pymongo >= 4.10
    from pymongo.client_session_shared import _TxnState
except ImportError:  # pragma: no cover - older pymongo
    from pymongo.client_session import _TxnState  # type: ignore[attr-defined,no-redef]


def statement(session: ClientSession) -> tuple[int, bool]:
    """For a statement the store's client sends in ``session``'s (open)
    transaction: its txnNumber, and whether it starts the transaction on the
    server (then pymongo's next command must not start it again)."""
    transaction = session._transaction
    starting = transaction.state == _TxnState.STARTING
    if starting:
        transaction.state = _TxnState.IN_PROGRESS
    return int(session._server_session.transaction_id), starting


def started(session: ClientSession) -> bool:
    """Whether ``session``'s (open) transaction has reached the server: its
    first command has been sent, so its snapshot is taken."""
    return session._transaction.state != _TxnState.STARTING
