"""The wheel `scripts/wheel` builds installs into a fresh virtualenv with no Rust toolchain on
PATH and runs a Django project on the embedded engine; it carries `djongo-server`.

The test builds with the dev profile (`scripts/wheel --dev` reuses the build `scripts/setup`
made: seconds, where a release build takes minutes); the release wheel differs only in
optimisation. Installing pulls Django and pymongo from PyPI, as a user's install does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SETTINGS = """
SECRET_KEY = "wheel-test"
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "djongo"]
DATABASES = {{"default": {{"ENGINE": "djongo", "NAME": "wheeltest", "DATA_DIR": {data!r}}}}}
USE_TZ = True
"""

QUERY = """
import django, djongo
django.setup()
from django.contrib.auth.models import User
User.objects.create_user("wheel", password="pw-wheel-42")
print("FROM", djongo.__file__)
print("USERS", User.objects.filter(username__startswith="whe").count())
"""


def _run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float = 900) -> str:
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_the_wheel_runs_a_project_without_cargo(tmp_path):
    build = subprocess.run([str(ROOT / "scripts/wheel"), "--dev", "--out", str(tmp_path / "dist")],
                           cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert build.returncode == 0, build.stderr[-5000:]
    wheel = Path(build.stdout.strip().splitlines()[-1])
    assert wheel.name.startswith("djongo_rs-") and wheel.suffix == ".whl"

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    # Only the venv and the system's own directories: no cargo, no rustc, no checkout.
    env = {"PATH": os.pathsep.join([str(venv / "bin"), "/usr/local/bin", "/usr/bin", "/bin"]),
           "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    assert shutil.which("cargo", path=env["PATH"]) is None
    assert shutil.which("rustc", path=env["PATH"]) is None
    _run([str(venv / "bin/python"), "-m", "pip", "install", "-q", str(wheel)], env, tmp_path)

    project = tmp_path / "project"
    project.mkdir()
    (project / "wheel_settings.py").write_text(SETTINGS.format(data=str(tmp_path / "data")))
    env = {**env, "DJANGO_SETTINGS_MODULE": "wheel_settings", "PYTHONPATH": str(project)}
    _run([str(venv / "bin/django-admin"), "migrate", "--no-input"], env, project)
    out = _run([str(venv / "bin/python"), "-c", textwrap.dedent(QUERY)], env, project)
    assert "USERS 1" in out
    # The installed package, not this checkout's python/ directory.
    assert f"FROM {venv}" in out, out

    server = subprocess.run([str(venv / "bin/djongo-server"), "--help"], env=env, cwd=project,
                            capture_output=True, text=True, timeout=60)
    assert server.returncode == 0
    assert "--unix-socket" in server.stdout
