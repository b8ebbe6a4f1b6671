"""Regenerate statements.sql: the SQL Django 5.2 emits through the djongo backend.

Run with the project venv: ``.venv/bin/python benches/compile/gen_statements.py``.
No database is touched: it only asks Django's SQL compilers for ``as_sql()``.

Run with the peer venv (Django 3.1 + Djongo 1.3.7) and ``--out statements_djongo137.sql``
it writes the dialect Djongo's own backend makes Django 3.1 emit for the same querysets,
which the peer is also timed on when it cannot translate the Django 5.2 text.
"""

from __future__ import annotations

import json
import pathlib
import sys

import django
from django.conf import settings

settings.configure(
    DATABASES={"default": {"ENGINE": "djongo", "NAME": "bench"}},
    INSTALLED_APPS=[],
    USE_TZ=True,
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
)
django.setup()

from django.db import connection, models  # noqa: E402
from django.db.models import Count, Exists, F, OuterRef, Q  # noqa: E402
from django.db.models.sql import DeleteQuery, InsertQuery, UpdateQuery  # noqa: E402


class Blog(models.Model):
    name = models.CharField(max_length=100)
    tagline = models.TextField()

    class Meta:
        app_label = "app"


class Author(models.Model):
    name = models.CharField(max_length=200)
    email = models.EmailField()

    class Meta:
        app_label = "app"


class Entry(models.Model):
    blog = models.ForeignKey(Blog, models.CASCADE)
    headline = models.CharField(max_length=255)
    body_text = models.TextField()
    pub_date = models.DateField()
    mod_date = models.DateField()
    authors = models.ManyToManyField(Author)
    editor = models.ForeignKey(Author, models.SET_NULL, null=True, related_name="edited")
    n_comments = models.IntegerField(default=0)
    n_pingbacks = models.IntegerField(default=0)
    rating = models.IntegerField(default=0)

    class Meta:
        app_label = "app"


def select_sql(qs) -> tuple[str, list]:
    sql, params = qs.query.get_compiler(using="default").as_sql()
    return sql, list(params)


class _Captured(Exception):
    pass


def count_sql(qs) -> tuple[str, list]:
    """The SQL of ``qs.count()``: capture it at ``execute_sql`` and stop there."""
    from django.db.models.sql.compiler import SQLCompiler

    def capture(self, *args, **kwargs):
        raise _Captured(*self.as_sql())

    original = SQLCompiler.execute_sql
    SQLCompiler.execute_sql = capture
    try:
        qs.count()
    except _Captured as c:
        return c.args[0], list(c.args[1])
    finally:
        SQLCompiler.execute_sql = original
    raise AssertionError("count() did not reach execute_sql")


def insert_sql(n: int) -> tuple[str, list]:
    fields = [f for f in Entry._meta.concrete_fields if not f.primary_key]
    objs = [
        Entry(blog_id=1, headline="h%d" % i, body_text="b", pub_date="2024-01-01",
              mod_date="2024-01-01")
        for i in range(n)
    ]
    if django.VERSION >= (4, 1):
        q = InsertQuery(Entry, on_conflict=None)
    else:  # Django 3.1, for the Djongo 1.3.7 dialect
        q = InsertQuery(Entry, ignore_conflicts=False)
    q.insert_values(fields, objs, raw=False)
    compiler = q.get_compiler(using="default")
    if connection.features.can_return_columns_from_insert:
        compiler.returning_fields = [Entry._meta.pk]
    stmts = compiler.as_sql()
    assert len(stmts) == 1, len(stmts)
    return stmts[0][0], list(stmts[0][1])


def update_sql() -> tuple[str, list]:
    q = UpdateQuery(Entry)
    q.add_update_values({"n_comments": F("n_comments") + 1})
    q.add_q(Q(pk=1))
    sql, params = q.get_compiler(using="default").as_sql()
    return sql, list(params)


def delete_sql() -> tuple[str, list]:
    q = DeleteQuery(Entry)
    q.add_q(Q(pk__in=[1, 2, 3]))
    sql, params = q.get_compiler(using="default").as_sql()
    return sql, list(params)


def create_table_sql() -> tuple[str, list]:
    with connection.schema_editor(collect_sql=True, atomic=False) as editor:
        sql, params = editor.table_sql(Entry)
    return sql, list(params)


def main() -> None:
    entries = Entry.objects
    stmts = {
        "select_where_order_limit": select_sql(
            entries.filter(headline__contains="django", n_comments__gte=3)
            .order_by("-pub_date")[:21]
        ),
        # select_related over a required FK (INNER JOIN) and a nullable one (LEFT OUTER JOIN).
        "select_two_joins": select_sql(
            entries.select_related("blog", "editor").filter(blog__name="Beatles")
            .order_by("-rating")[:10]
        ),
        "count_star": count_sql(entries.filter(rating__gt=3)),
        "group_by_having": select_sql(
            entries.values("blog_id").annotate(n=Count("id")).filter(n__gt=2).order_by("-n")
        ),
        "in_subquery": select_sql(
            entries.filter(blog__in=Blog.objects.filter(name__startswith="B").values("id"))
        ),
        "exists_correlated": select_sql(
            Blog.objects.filter(
                Exists(Entry.objects.filter(blog=OuterRef("pk"), rating__gte=4))
            )
        ),
        "insert_1_row": insert_sql(1),
        "insert_100_rows": insert_sql(100),
        "update_f_plus_1": update_sql(),
        "delete_pk_in": delete_sql(),
        "create_table": create_table_sql(),
    }
    import djongo

    backend = getattr(djongo, "__version__", "djongo-rs")
    out = [
        "-- Generated by gen_statements.py (Django %s, ENGINE djongo = %s)."
        % (django.__version__, backend)
    ]
    for name, (sql, params) in stmts.items():
        out.append("-- name: %s" % name)
        # The parameters Django passes with it (the peer binds them while translating).
        out.append("-- params: %s" % json.dumps(params, default=str))
        out.append(sql)
    text = "\n".join(out) + "\n"
    target = pathlib.Path(__file__).with_name("statements.sql")
    if "--out" in sys.argv:
        target = pathlib.Path(sys.argv[sys.argv.index("--out") + 1])
    if "--stdout" in sys.argv:
        sys.stdout.write(text)
    else:
        target.write_text(text)
        print("wrote", target)


if __name__ == "__main__":
    main()
