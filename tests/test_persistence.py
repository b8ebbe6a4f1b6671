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


def test_acknowledged_writes_survive_kill_9_mid_load(tmp_path):
    migrate = run_django(tmp_path, 'call_command("migrate", verbosity=0)')
    assert migrate.returncode == 0, migrate.stderr
    # Writer threads create rows and print each id once it is acknowledged;
    # the process kills itself while they are still writing.
    crashed = run_django(tmp_path, """
        import threading
        printed = threading.Lock()
        count = [0]
        enough = threading.Event()

        def write(n):
            while True:
                a = Author.objects.create(name=f"w{n}")
                with printed:
                    print(a.id, flush=True)
                    count[0] += 1
                    if count[0] >= 60:
                        enough.set()

        for n in range(3):
            threading.Thread(target=write, args=(n,), daemon=True).start()
        enough.wait(60)
        os.kill(os.getpid(), __import__("signal").SIGKILL)
    """)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    acked = [int(line) for line in crashed.stdout.split()]
    assert len(acked) >= 60
    assert len(set(acked)) == len(acked), "an id was handed out twice"
    after = run_django(tmp_path, """
        print(*Author.objects.values_list("id", flat=True))
        print(Author.objects.create(name="next").id)
    """)
    assert after.returncode == 0, after.stderr
    stored_line, next_line = after.stdout.strip().splitlines()
    stored = {int(i) for i in stored_line.split()}
    assert set(acked) <= stored, f"lost: {sorted(set(acked) - stored)[:10]}"
    # The counter is never behind the rows that made it to disk.
    assert int(next_line) > max(stored)
