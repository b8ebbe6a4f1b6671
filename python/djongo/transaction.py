"""Retrying a transaction that lost a write conflict.

MongoDB (and the embedded engine, which follows it) runs transactions with
snapshot isolation and detects write conflicts per document: when two
transactions write the same document, the second one fails at once with
``WriteConflict``, labelled ``TransientTransactionError``, and its whole
transaction is aborted. Django raises that as ``OperationalError`` from the
statement (or from the commit). Nothing of the block was applied, so the cure
is to run the block again, which is what MongoDB's drivers do in
``with_transaction``. PostgreSQL users know the same pattern from
serialization failures.

::

    from djongo.transaction import retry_on_conflict

    @retry_on_conflict()
    def transfer(src, dst, amount):
        Account.objects.filter(pk=src).update(balance=F("balance") - amount)
        Account.objects.filter(pk=dst).update(balance=F("balance") + amount)

The function runs inside ``transaction.atomic(using=...)``; it must have no
effects outside the database that a second run would repeat (or make them
idempotent, or defer them with ``transaction.on_commit``).
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections
from django.db import transaction as django_transaction

from . import database

TRANSIENT_LABEL = "TransientTransactionError"

P = ParamSpec("P")
R = TypeVar("R")


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (a ``django.db`` error, or one of djongo's) says that
    the transaction was aborted by a conflict and may simply be run again."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, database.Error) and TRANSIENT_LABEL in current.labels:
            return True
        current = current.__cause__ or current.__context__
    return False


def retry_on_conflict(
    func: Callable[P, R] | None = None,
    *,
    using: str | None = None,
    attempts: int = 5,
    backoff: float = 0.01,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Runs the decorated function in ``transaction.atomic(using)`` and runs
    it again, up to ``attempts`` times in all, when the transaction fails with
    a transient error (a write conflict).

    Between attempts it sleeps a random time up to ``backoff`` seconds,
    doubled after each failure, so that conflicting writers spread out. Inside
    an outer ``atomic()`` block nothing can be retried (the outer transaction
    is the one that was aborted), so the error is raised at once.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            alias = using or DEFAULT_DB_ALIAS
            delay = backoff
            for attempt in range(1, attempts + 1):
                try:
                    with django_transaction.atomic(using=alias):
                        return fn(*args, **kwargs)
                except Exception as exc:
                    nested = connections[alias].in_atomic_block
                    if nested or attempt == attempts or not is_transient(exc):
                        raise
                time.sleep(random.uniform(0, delay))
                delay *= 2
            raise AssertionError("unreachable")  # the loop returns or raises

        return run

    if func is not None:
        return decorate(func)
    return decorate
