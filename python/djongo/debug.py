"""Seeing what the backend sends: the MongoDB commands Django's statements became.

``djongo.sql`` and ``djongo.mongo`` log each SQL statement and each command at
``DEBUG`` (README, the ``LOGGING`` option). ``capture_commands`` collects the
commands instead, as documents, the way Django's ``CaptureQueriesContext``
collects SQL: for a test that asserts a queryset uses an index, or a look at
what a view sends::

    from djongo.debug import capture_commands

    with capture_commands() as sent:
        Entry.objects.filter(headline="Beatles").count()
    [(name, command)] = sent
    print(connection.mongo_database.command("explain", command))
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from bson import json_util

from djongo.transport import command_logger


class SentCommand(NamedTuple):
    """One command as it was sent: its name (``"find"``, ``"aggregate"``...) and
    its document, without the session and cluster fields the client adds."""

    name: str
    command: dict[str, Any]


class _Collector(logging.Handler):
    def __init__(self, into: list[SentCommand]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        # Both clients (the store's own and pymongo's listener) log
        # ("%s.%s: %s", database, name, command as extended JSON); failures
        # are logged with other arguments and are not commands.
        args = record.args
        if isinstance(args, tuple) and len(args) == 3 and isinstance(args[2], str):
            self.into.append(SentCommand(str(args[1]), json_util.loads(args[2])))


@contextmanager
def capture_commands() -> Iterator[list[SentCommand]]:
    """Collects, in order, every command this process's connections send while
    the block runs (all aliases and threads, ``mongo_*`` calls included)."""
    sent: list[SentCommand] = []
    handler = _Collector(sent)
    level = command_logger.level
    command_logger.addHandler(handler)
    command_logger.setLevel(logging.DEBUG)
    try:
        yield sent
    finally:
        command_logger.removeHandler(handler)
        command_logger.setLevel(level)
