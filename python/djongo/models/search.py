"""Full-text search through MongoDB's ``$text``: ``TextSearch`` filters on a
collection's text index (``djongo.models.TextIndex``), ``TextScore`` is each
match's relevance.

    Article.objects.filter(TextSearch("coffee -shop"))
    Article.objects.filter(TextSearch("café", language="french"))
        .annotate(score=TextScore()).order_by("-score")

The search string is MongoDB's: words match any of them (stemmed, stop words
ignored), ``"a phrase"`` must appear as written, ``-word`` and ``-"a phrase"``
exclude. It is bound as a parameter: text from a form is searched for, never
read as SQL or an operator. MongoDB allows ``$text`` only as a condition of
the whole filter: ``TextSearch`` may be combined with other conditions by
AND (``filter(TextSearch(...), views__gt=10)``), not negated (``exclude``) nor
put under an OR; those raise ``NotSupportedError``. Without a text index on
the collection, the query raises ``DatabaseError`` ("text index required").
"""

from __future__ import annotations

from typing import Any

from django.db import NotSupportedError
from django.db.models import BooleanField, Expression, FloatField


def _refuse(name: str, connection) -> NotSupportedError:
    return NotSupportedError(f"{name} is MongoDB's $text: it needs the djongo backend, "
                             f"not {connection.vendor}.")


class TextSearch(Expression):
    """A condition: the document matches the text search ``search``."""

    conditional = True
    output_field = BooleanField()

    def __init__(self, search: str, *, language: str | None = None,
                 case_sensitive: bool = False, diacritic_sensitive: bool = False) -> None:
        if not isinstance(search, str):
            raise TypeError(f"TextSearch searches for a string, not {type(search).__name__}.")
        if language is not None and not isinstance(language, str):
            raise TypeError("TextSearch.language is a language name such as 'english' or 'es'.")
        super().__init__()
        self.search = search
        self.language = language
        self.case_sensitive = bool(case_sensitive)
        self.diacritic_sensitive = bool(diacritic_sensitive)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.search!r})"

    @property
    def identity(self) -> tuple[Any, ...]:
        return (type(self), self.search, self.language, self.case_sensitive,
                self.diacritic_sensitive)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TextSearch) and other.identity == self.identity

    def __hash__(self) -> int:
        return hash(self.identity)

    def as_sql(self, compiler, connection):
        raise _refuse("TextSearch", connection)

    def as_djongo(self, compiler, connection):
        sql, params = ["MONGO_TEXT_SEARCH(%s"], [self.search]
        if self.language is not None:
            sql.append(", '$language', %s")
            params.append(self.language)
        if self.case_sensitive:
            sql.append(", '$caseSensitive', TRUE")
        if self.diacritic_sensitive:
            sql.append(", '$diacriticSensitive', TRUE")
        return "".join(sql) + ")", params


class TextScore(Expression):
    """The relevance of the document to the query's ``TextSearch`` (MongoDB's
    ``{$meta: "textScore"}``), for ``annotate`` and ``order_by``."""

    output_field = FloatField()

    def __repr__(self) -> str:
        return "TextScore()"

    @property
    def identity(self) -> tuple[Any, ...]:
        return (type(self),)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TextScore)

    def __hash__(self) -> int:
        return hash(type(self))

    def as_sql(self, compiler, connection):
        raise _refuse("TextScore", connection)

    def as_djongo(self, compiler, connection):
        return "MONGO_TEXT_SCORE()", []
