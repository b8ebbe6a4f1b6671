"""djongo.debug.capture_commands: the commands a block of ORM code sends, as documents."""

import pytest
from django.db import connection
from djongo.debug import capture_commands

from tests.blogapp.models import Author

pytestmark = pytest.mark.django_db


def test_captures_what_a_queryset_sends_and_only_inside_the_block():
    Author.objects.create(name="kept")
    with capture_commands() as sent:
        assert list(Author.objects.filter(name="kept").values_list("name", flat=True)) == ["kept"]
    Author.objects.filter(name="kept").count()      # after the block: not captured

    reads = [(name, command) for name, command in sent if command.get(name) == "blogapp_author"]
    assert [name for name, _ in reads] == ["find"]
    [(_, find)] = reads
    # The name the user searched for is a value in the filter, and the captured
    # document is a command the server takes as it is.
    assert "kept" in repr(find["filter"])
    explained = connection.connection.database.command(
        "explain", find, verbosity="queryPlanner",
        session=connection.connection.session_for_statement())
    assert explained["queryPlanner"]["namespace"].endswith("blogapp_author")
