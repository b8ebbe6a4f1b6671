"""``manage.py dbshell`` with no mongosh installed: djongo's built-in shell on the demo's
embedded store, driven with ``-c``, through stdin and through a pseudo-terminal."""

from __future__ import annotations

import io
import os
import select
import shutil
import subprocess
import sys
import time

import pytest
from djongo.shell import parse_json, print_table, statements

from tests.test_admin_browser import DEMO, _manage


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    if shutil.which("mongosh"):
        pytest.fail("these tests are for machines without mongosh; it is on PATH here")
    data = tmp_path_factory.mktemp("dbshell-data")
    env = dict(os.environ)
    env.update(DJONGO_DEMO_DATA_DIR=str(data), DJANGO_SETTINGS_MODULE="blogsite.settings",
               PYTHONUNBUFFERED="1", DJONGO_SHELL_HISTORY=str(data / "history"))
    _manage(env, "migrate", "--no-input")
    return env


def _dbshell(env, *parameters: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", "dbshell", "--", *parameters],
                          cwd=DEMO, env=env, input=stdin or "", capture_output=True, text=True,
                          timeout=120)


def test_sql_and_mongodb_commands_with_c(env):
    proc = _dbshell(
        env,
        "-c", "INSERT INTO blog_author (name, email) VALUES ('Ann', 'ann@example.com');",
        "-c", "INSERT INTO blog_author (name, email) VALUES ('Bob', 'bob@example.com')",
        "-c", "SELECT name, email FROM blog_author ORDER BY name;",
        "-c", '{"count": "blog_author", "query": {"name": "Ann"}}',
        "-c", "db.blog_author.find({email: {$ne: null}}, {_id: 0, name: 1})",
        "-c", "db.blog_author.countDocuments({})",
        "-c", "db.blog_author.distinct('name')",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "OK, 1 row(s) affected" in out
    # The rows as a table, NULL for None, with a row count.
    assert "name | email" in out
    assert "Ann  | ann@example.com" in out
    assert "Bob  | bob@example.com" in out
    assert "(2 rows)" in out
    # A command's reply without the cluster bookkeeping.
    assert '"n": 1' in out and "clusterTime" not in out
    assert '{"name": "Ann"}\n{"name": "Bob"}\n(2 documents)' in out
    assert "\n2\n" in out
    assert '"Ann",' in out and '"Bob"' in out


def test_an_error_is_one_line_and_the_exit_status_says_so(env):
    proc = _dbshell(env, "-c", "SELEC name FROM blog_author;", "-c", "SELECT 40 + 2 AS answer;",
                    "-c", "db.blog_author.drop()")
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 2, proc.stdout
    assert "SQL" in errors[0]
    assert "not one of the shell's forms" in errors[1]
    # The statement after the failing one still ran.
    assert "42" in [line.strip() for line in lines]


def test_a_script_on_stdin_with_the_commands_toggle(env):
    script = "\n".join([
        "SELECT name",
        "  FROM blog_author",
        "  WHERE name = 'Ann';",
        "\\commands",
        "SELECT COUNT(*) AS n FROM blog_author;",
        "{\"listCollections\": 1,",
        "  nameOnly: true}",
        "\\commands",
        "SELECT 1 AS one;",
        "{not json}",
        "\\nope",
    ]) + "\n"
    proc = _dbshell(env, stdin=script)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the last two lines fail
    out = proc.stdout
    assert "Ann \n(1 row)" in out
    # Only while the toggle is on, the commands each input sent.
    commands = [line for line in out.splitlines() if line.startswith("-- ")]
    assert any("blog.aggregate" in line or "blog.count" in line for line in commands), out
    assert any("listCollections" in line for line in commands), out
    assert not any('"$literal": 1' in line for line in commands), out
    assert "printing MongoDB commands: on" in out and "printing MongoDB commands: off" in out
    assert sum(line.startswith("error:") for line in out.splitlines()) == 2
    assert "unknown command '\\\\nope'" in out


def _read_until(fd: int, marker: bytes, seen: bytearray, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while marker not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            shown = seen.decode(errors="replace")
            pytest.fail(f"no {marker!r} from the shell; it printed:\n{shown}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                pytest.fail(f"the shell ended early; it printed:\n{seen.decode(errors='replace')}")
            seen += chunk


def test_interactive_on_a_terminal(env):
    main, child = os.openpty()
    proc = subprocess.Popen([sys.executable, "manage.py", "dbshell"], cwd=DEMO, env=env,
                            stdin=child, stdout=child, stderr=subprocess.DEVNULL, close_fds=True)
    os.close(child)
    seen = bytearray()
    try:
        _read_until(main, b"djongo> ", seen)
        # A statement over two lines: the continuation prompt, then the table.
        os.write(main, b"SELECT name FROM blog_author\n")
        _read_until(main, b"...> ", seen)
        os.write(main, b"ORDER BY name;\n")
        _read_until(main, b"(2 rows)", seen)
        # An error keeps the shell alive.
        os.write(main, b"SELECT * FROM;\n")
        _read_until(main, b"error:", seen)
        os.write(main, b"\\q\n")
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main)
    assert "history" in os.listdir(os.path.dirname(env["DJONGO_SHELL_HISTORY"]))


def test_mongosh_keys_and_script_splitting():
    assert parse_json('{name: "a, b: c", $or: [{n: {$gt: 1}}], "x": \'it\\\'s\'}') == {
        "name": "a, b: c", "$or": [{"n": {"$gt": 1}}], "x": "it's"}
    assert parse_json('{"_id": {"$oid": "5f0c1a8e9d3b2a1c4e5f6a7b"}}')["_id"].binary
    lines = ["SELECT 1\n", "; \n", "\n", "{a:\n", " 1}\n", "\\dt\n", "SELECT 2"]
    assert list(statements(lines)) == [
        "SELECT 1\n;", "{a:\n 1}", "\\dt", "SELECT 2"]


def test_tables_show_null_and_cut_wide_cells():
    out = io.StringIO()
    print_table(["a", "b"], [(None, "x" * 100), (1, "two\nlines")], out)
    lines = out.getvalue().splitlines()
    assert lines[0].split("|")[0].strip() == "a"
    assert lines[2].startswith("NULL | " + "x" * 59 + "…")
    assert lines[3].startswith("1    | two\\nlines")
    assert lines[-1] == "(2 rows)"
