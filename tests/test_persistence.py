"""The embedded engine keeps acknowledged writes across processes and crashes."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SETUP = """
import os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
import django
django.setup()
from django.core.management import call_command
from tests.blogapp.models import Author
"""


def run_django(data_dir: Path, body: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJONGO_TEST_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", SETUP + textwrap.dedent(body)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


def test_data_survives_a_restart(tmp_path):
    first = run_django(tmp_path, """
        call_command("migrate", verbosity=0)
        Author.objects.create(name="kept")
    """)
    assert first.returncode == 0, first.stderr
    second = run_django(tmp_path, """
        print(list(Author.objects.values_list("name", flat=True)))
    """)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "['kept']"


def test_acknowledged_writes_survive_kill_9(tmp_path):
    migrate = run_django(tmp_path, 'call_command("migrate", verbosity=0)')
    assert migrate.returncode == 0, migrate.stderr
    crashed = run_django(tmp_path, """
        for i in range(20):
            Author.objects.create(name=f"a{i}")
        os.kill(os.getpid(), __import__("signal").SIGKILL)
    """)
    assert crashed.returncode == -signal.SIGKILL
    after = run_django(tmp_path, """
        print(Author.objects.count(), Author.objects.create(name="next").id)
    """)
    assert after.returncode == 0, after.stderr
    count, next_id = after.stdout.split()
    assert count == "20"
    assert int(next_id) == 21
