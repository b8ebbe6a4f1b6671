"""The CHECK-constraint and schema-validation tests again, with the database reached through
``CLIENT`` on a standalone ``djongo-server`` (built by ``cargo build -p djongo-server``)
instead of the embedded default: validators are the server's, whichever server it is."""

import os
import subprocess
import sys

from tests.engine_server import ROOT, Server

MODULES = ["tests/test_check_constraints.py", "tests/test_schema_validation.py"]


def test_validation_tests_pass_against_a_standalone_server(tmp_path):
    server = Server(tmp_path / "data").start()
    try:
        env = {**os.environ, "DJONGO_TEST_MONGODB_URI": server.uri}
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *MODULES],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
        )
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "skipped" not in proc.stdout
