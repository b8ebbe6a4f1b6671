"""The built-in ``manage.py dbshell``: used when ``mongosh`` is not installed.

It runs on the Django connection of the chosen alias, so it reaches exactly
what the project reaches (the embedded store, or the server of ``CLIENT``)
with no program to install. Three kinds of input:

- SQL, ended by ``;`` (it may span lines): compiled and run as Django's
  statements are; rows print as a table, other statements print how many
  rows they changed.
- A MongoDB command as Extended JSON (``{"listCollections": 1}``) or one of
  mongosh's common forms: ``db.<collection>.find(filter, projection)``,
  ``findOne``, ``aggregate([...])``, ``countDocuments(filter)``,
  ``distinct(key, filter)``, ``show collections``, ``show dbs``. Keys may be
  written without quotes, as in mongosh.
- Backslash commands: ``\\commands`` toggles printing the MongoDB commands
  each input sends, ``\\dt`` lists the collections, ``\\?`` helps, ``\\q``
  quits.

A failure prints one ``error:`` line and the shell goes on; with ``-c`` (one
statement, for scripts) or input that is not a terminal, the exit status says
whether every statement succeeded.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from bson import json_util
from django.db import DatabaseError
from pymongo.errors import PyMongoError

HELP = """\
SQL statements end with ';' and may span lines; rows print as a table.
MongoDB commands:  {"count": "blog_entry"}    (Extended JSON; unquoted keys are fine)
                   db.blog_entry.find({n: {$gte: 3}}, {title: 1})
                   db.blog_entry.findOne({_id: 1})
                   db.blog_entry.aggregate([{$group: {_id: null, n: {$sum: 1}}}])
                   db.blog_entry.countDocuments({})
                   db.blog_entry.distinct("author_id", {})
                   show collections | show dbs
\\commands   print the MongoDB commands each input sends (toggle)
\\dt         list the collections
\\?          this help
\\q          quit (or Ctrl-D)"""

# Cells wider than this are cut, so that one large document keeps the table readable.
MAX_CELL = 60
# A find prints at most this many documents, as mongosh's first batch does.
MAX_DOCUMENTS = 100

_METHOD_CALL = re.compile(
    r"^db\.(?P<collection>[^\s(]+)\.(?P<method>\w+)\((?P<args>.*)\)\s*;?\s*$", re.S)
# Cluster bookkeeping every reply carries; mongosh does not print it either.
_REPLY_NOISE = frozenset({"operationTime", "$clusterTime"})
# A bare key of a mongosh object literal: an identifier (or $operator) right after
# '{' or ',' and before ':'.
_BARE_KEY = re.compile(r"([{,]\s*)([A-Za-z_$][\w$]*)(\s*:)")


class ShellError(Exception):
    """Input the shell cannot run; the message is shown to the user."""


class _CommandEcho(logging.Handler):
    """Prints each command the connection sends (the ``djongo.mongo`` log)."""

    def __init__(self, out: TextIO) -> None:
        super().__init__(logging.DEBUG)
        self.out = out

    def emit(self, record: logging.LogRecord) -> None:
        print(f"-- {record.getMessage()}", file=self.out)


class Shell:
    """An interactive shell on one Django database connection."""

    def __init__(self, connection, out: TextIO | None = None) -> None:
        self.connection = connection
        self.out = out if out is not None else sys.stdout
        self._echo: _CommandEcho | None = None
        self._saved_level = logging.NOTSET

    # -- entry points ---------------------------------------------------------

    def run(self, parameters: Sequence[str], stdin: TextIO | None = None) -> int:
        """Runs ``dbshell``'s parameters; returns the process exit status."""
        parser = argparse.ArgumentParser(prog="manage.py dbshell --", add_help=True)
        parser.add_argument("-c", "--command", action="append", default=[],
                            help="run this statement (SQL or a MongoDB command) and exit")
        parser.add_argument("--commands", action="store_true",
                            help="print the MongoDB commands each statement sends")
        options = parser.parse_args(list(parameters))
        if options.commands:
            self.toggle_commands()
        if options.command:
            return 0 if all([self.run_input(text) for text in options.command]) else 1
        stdin = stdin if stdin is not None else sys.stdin
        if stdin.isatty():
            return self.interactive()
        ok = True
        for text in statements(stdin):
            ok = self.run_input(text) and ok
        return 0 if ok else 1

    def interactive(self) -> int:
        history = _history_file()
        readline = _readline()
        if readline is not None and history is not None:
            try:
                readline.read_history_file(history)
            except OSError:
                pass
        print(f"djongo dbshell on database '{self.connection.settings_dict['NAME']}' "
              f"({self.connection.display_name}). \\? for help, \\q to quit.", file=self.out)
        try:
            pending: list[str] = []
            while True:
                try:
                    line = input("...> " if pending else "djongo> ")
                except EOFError:
                    print(file=self.out)
                    return 0
                except KeyboardInterrupt:
                    print(file=self.out)
                    pending = []
                    continue
                pending.append(line)
                text = "\n".join(pending).strip()
                if not text:
                    pending = []
                    continue
                if text in ("\\q", "quit", "exit"):
                    return 0
                if _complete(text):
                    pending = []
                    self.run_input(text)
        finally:
            if readline is not None and history is not None:
                try:
                    readline.write_history_file(history)
                except OSError:
                    pass

    def run_input(self, text: str) -> bool:
        """Runs one statement or command; prints its result or one error line."""
        text = text.strip()
        try:
            self._dispatch(text)
        except (DatabaseError, PyMongoError, ShellError, ValueError, TypeError) as exc:
            # ValueError/TypeError: Extended JSON that does not parse, a wrong argument type.
            print(f"error: {_one_line(exc)}", file=self.out)
            return False
        return True

    def toggle_commands(self) -> bool:
        """Switches printing the MongoDB commands on or off; returns the new state."""
        log = logging.getLogger("djongo.mongo")
        if self._echo is None:
            self._echo = _CommandEcho(self.out)
            self._saved_level = log.level
            log.setLevel(logging.DEBUG)
            log.addHandler(self._echo)
            return True
        log.removeHandler(self._echo)
        log.setLevel(self._saved_level)
        self._echo = None
        return False

    # -- the kinds of input ---------------------------------------------------

    def _dispatch(self, text: str) -> None:
        if not text:
            return
        if text.startswith("\\"):
            self._backslash(text)
        elif text.startswith("{"):
            reply = self._database().command(parse_json(text.rstrip(";")))
            self._print_document({k: v for k, v in reply.items() if k not in _REPLY_NOISE})
        elif text.startswith("db."):
            self._method(text)
        elif re.fullmatch(r"show\s+(collections|tables)\s*;?", text, re.I):
            self._list_collections()
        elif re.fullmatch(r"show\s+(dbs|databases)\s*;?", text, re.I):
            for name in self._database().client.list_database_names():
                print(name, file=self.out)
        else:
            self._sql(text.rstrip().rstrip(";"))

    def _backslash(self, text: str) -> None:
        word = text.split()[0]
        if word in ("\\?", "\\h", "\\help"):
            print(HELP, file=self.out)
        elif word == "\\commands":
            state = self.toggle_commands()
            print(f"printing MongoDB commands: {'on' if state else 'off'}", file=self.out)
        elif word == "\\dt":
            self._list_collections()
        elif word == "\\q":
            raise ShellError("\\q ends the interactive shell; with -c there is nothing to quit")
        else:
            raise ShellError(f"unknown command {word!r}; \\? lists the commands")

    def _sql(self, sql: str) -> None:
        with self.connection.cursor() as cursor:
            # Without parameters: a '%' typed in the shell is a character, not a placeholder.
            cursor.execute(sql.replace("%", "%%") if "%" in sql else sql, ())
            if cursor.description is None:
                count = cursor.rowcount
                print(f"OK{'' if count is None or count < 0 else f', {count} row(s) affected'}",
                      file=self.out)
                return
            columns = [column[0] for column in cursor.description]
            print_table(columns, cursor.fetchall(), self.out)

    def _method(self, text: str) -> None:
        match = _METHOD_CALL.match(text)
        if match is None:
            raise ShellError("expected db.<collection>.<method>(...), e.g. db.blog_entry.find({})")
        collection = self._database()[match["collection"]]
        method = match["method"]
        args = parse_json(f"[{match['args']}]") if match["args"].strip() else []
        if not isinstance(args, list):
            raise ShellError("the arguments must be JSON values")
        if method == "find":
            _arity(method, args, 2)
            documents = collection.find(*_documents(method, args)).limit(MAX_DOCUMENTS + 1)
            self._print_documents(documents)
        elif method == "findOne":
            _arity(method, args, 2)
            self._print_document(collection.find_one(*_documents(method, args)))
        elif method == "aggregate":
            _arity(method, args, 1)
            if not args or not isinstance(args[0], list):
                raise ShellError("aggregate takes a pipeline: a list of stages")
            self._print_documents(collection.aggregate(args[0]))
        elif method == "countDocuments":
            _arity(method, args, 1)
            print(collection.count_documents(*(_documents(method, args) or [{}])), file=self.out)
        elif method == "distinct":
            _arity(method, args, 2)
            if not args or not isinstance(args[0], str):
                raise ShellError("distinct takes a field name, then an optional filter")
            filters = _documents(method, args[1:])
            self._print_document(collection.distinct(args[0], *filters))
        else:
            raise ShellError(f"db.<collection>.{method}() is not one of the shell's forms; "
                             "run any command as Extended JSON instead, e.g. {\"find\": \"coll\"}")

    def _list_collections(self) -> None:
        for name in sorted(self._database().list_collection_names()):
            print(name, file=self.out)

    def _database(self):
        self.connection.ensure_connection()
        return self.connection.mongo_database

    # -- output ---------------------------------------------------------------

    def _print_document(self, value: Any) -> None:
        print(json_util.dumps(value, json_options=json_util.RELAXED_JSON_OPTIONS, indent=2),
              file=self.out)

    def _print_documents(self, documents: Iterable[Any]) -> None:
        shown = 0
        for document in documents:
            if shown == MAX_DOCUMENTS:
                print(f"(more than {MAX_DOCUMENTS} documents; narrow the filter or add a limit)",
                      file=self.out)
                break
            print(json_util.dumps(document, json_options=json_util.RELAXED_JSON_OPTIONS),
                  file=self.out)
            shown += 1
        else:
            print(f"({shown} document{'' if shown == 1 else 's'})", file=self.out)


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], out: TextIO) -> None:
    """Rows as an aligned text table, psql style, with NULL for None."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        return " | ".join(value.ljust(width) for value, width in zip(values, widths, strict=True))

    print(line(columns), file=out)
    print("-+-".join("-" * width for width in widths), file=out)
    for row in cells:
        print(line(row), file=out)
    print(f"({len(cells)} row{'' if len(cells) == 1 else 's'})", file=out)


def statements(lines: Iterable[str]) -> Iterator[str]:
    """Splits script input into statements: SQL up to a ';' that ends a line, other
    input (JSON, ``db.`` calls, backslash commands) when it is complete."""
    pending: list[str] = []
    for line in lines:
        pending.append(line.rstrip("\n"))
        text = "\n".join(pending).strip()
        if not text:
            pending = []
        elif _complete(text):
            pending = []
            yield text
    rest = "\n".join(pending).strip()
    if rest:
        yield rest


def parse_json(text: str) -> Any:
    """Extended JSON, also with mongosh's unquoted keys (``{name: 1, $gt: 2}``)."""
    return json_util.loads(_quote_bare_keys(text))


def _quote_bare_keys(text: str) -> str:
    # Quote bare keys outside string literals only: a value like "a, b: c" stays as written.
    parts = re.split(r'("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\')', text)
    for i in range(0, len(parts), 2):
        parts[i] = _BARE_KEY.sub(lambda m: f'{m[1]}"{m[2]}"{m[3]}', parts[i])
    for i in range(1, len(parts), 2):
        if parts[i].startswith("'"):
            # A single-quoted JS string becomes the same JSON string.
            parts[i] = json_util.dumps(parts[i][1:-1].replace("\\'", "'"))
    return "".join(parts)


def _complete(text: str) -> bool:
    if text.startswith("\\") or re.fullmatch(r"show\s+\w+\s*;?", text, re.I):
        return True
    if text.startswith(("{", "db.")):
        return _balanced(text)
    return text.endswith(";")


def _balanced(text: str) -> bool:
    depth = 0
    quote = None
    escaped = False
    for char in text:
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char in "{[(":
            depth += 1
        elif char in "}])":
            depth -= 1
    return depth <= 0 and quote is None


def _arity(method: str, args: list, most: int) -> None:
    if len(args) > most:
        raise ShellError(f"{method}() takes at most {most} argument(s) here, got {len(args)}")


def _documents(method: str, args: list) -> list[dict]:
    for arg in args:
        if not isinstance(arg, dict):
            raise ShellError(f"{method}() takes documents ({{...}}), got {json_util.dumps(arg)}")
    return args


def _cell(value: Any) -> str:
    text = "NULL" if value is None else str(value)
    text = text.replace("\n", "\\n")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _history_file() -> str | None:
    path = os.environ.get("DJONGO_SHELL_HISTORY")
    if path:
        return path
    home = Path.home()
    return str(home / ".djongo_history") if home.is_dir() else None


def _readline():
    try:
        import readline
    except ImportError:  # not on every platform; line editing is then the terminal's
        return None
    return readline
