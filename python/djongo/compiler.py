"""Django's SQL compilers, each running its statement with its read and write
concerns (djongo.concerns) in effect. The SQL they write is Django's own."""

from __future__ import annotations

from django.db.models.sql import compiler

from . import concerns


class _WithConcerns:
    def execute_sql(self, *args, **kwargs):
        options = concerns.of_query(self.query)
        if options is None:
            return super().execute_sql(*args, **kwargs)
        token = concerns.current.set(options)
        try:
            return super().execute_sql(*args, **kwargs)
        finally:
            concerns.current.reset(token)


class SQLCompiler(_WithConcerns, compiler.SQLCompiler):
    pass


class SQLInsertCompiler(_WithConcerns, compiler.SQLInsertCompiler):
    pass


class SQLDeleteCompiler(_WithConcerns, compiler.SQLDeleteCompiler):
    pass


class SQLUpdateCompiler(_WithConcerns, compiler.SQLUpdateCompiler):
    pass


class SQLAggregateCompiler(_WithConcerns, compiler.SQLAggregateCompiler):
    pass
