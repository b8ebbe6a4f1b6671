"""The demo, as a new user works with it: runserver serves the blog while, at the
same time, ``manage.py shell -c``, ``createsuperuser``, ``inspectdb`` and ``migrate``
run against the same data, as they would on SQLite."""

from __future__ import annotations

import http.cookiejar
import os
import re
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.test_admin_browser import DEMO, _free_port, _manage, _wait_for_http

SHELL_WRITES = """
from blog.models import Author
Author.objects.create(name="Written From The Shell", email="shell@example.com")
print("authors:", Author.objects.count())
"""


def _admin_session(base_url: str, username: str, password: str) -> urllib.request.OpenerDirector:
    """An opener logged into the admin (fails the test if the login is refused)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{base_url}/admin/login/", timeout=30) as resp:
        page = resp.read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "username": username,
                                   "password": password, "next": "/admin/"}).encode()
    request = urllib.request.Request(f"{base_url}/admin/login/", data=form,
                                     headers={"Referer": f"{base_url}/admin/login/"})
    with opener.open(request, timeout=30) as resp:
        landed = resp.geturl()
        body = resp.read().decode()
    assert landed.endswith("/admin/"), f"login as {username} refused:\n{body[:2000]}"
    return opener


def test_runserver_shell_createsuperuser_inspectdb_and_migrate_share_the_data(tmp_path):
    env = dict(os.environ)
    env.update(DJONGO_DEMO_DATA_DIR=str(tmp_path / "djongo-data"),
               DJANGO_SETTINGS_MODULE="blogsite.settings", PYTHONUNBUFFERED="1",
               DJANGO_SUPERUSER_PASSWORD="from-the-cli-42")
    _manage(env, "migrate", "--no-input")
    _manage(env, "ensure_superuser")

    port = _free_port()
    log = tmp_path / "runserver.log"
    with open(log, "wb") as out:
        runserver = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=DEMO, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_http(f"{base_url}/admin/login/", runserver, log)
        admin = _admin_session(base_url, "admin", "djongo-demo")

        # The web side keeps reading while the commands run.
        stop = threading.Event()
        pages: list[int] = []

        def browse() -> None:
            while not stop.is_set():
                with admin.open(f"{base_url}/admin/blog/author/", timeout=60) as resp:
                    pages.append(resp.status)

        browser = threading.Thread(target=browse)
        browser.start()
        commands = {
            "shell": ["shell", "-c", SHELL_WRITES],
            "createsuperuser": ["createsuperuser", "--noinput", "--username", "cli-admin",
                                "--email", "cli@example.com"],
            "inspectdb": ["inspectdb"],
            "migrate": ["migrate", "--no-input"],
        }
        running = {
            name: subprocess.Popen([sys.executable, "manage.py", *args], cwd=DEMO, env=env,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
            for name, args in commands.items()
        }
        results = {name: proc.communicate(timeout=300) for name, proc in running.items()}
        stop.set()
        browser.join(120)
        for name, proc in running.items():
            assert proc.returncode == 0, f"{name} failed:\n{results[name][1]}"

        assert "authors: " in results["shell"][0]
        assert "Superuser created successfully." in results["createsuperuser"][0]
        assert "class BlogAuthor(models.Model):" in results["inspectdb"][0]
        assert "No migrations to apply." in results["migrate"][0]
        assert pages and set(pages) == {200}, pages

        # runserver sees what the other processes wrote: the shell's author...
        with admin.open(f"{base_url}/admin/blog/author/?q=Shell", timeout=60) as resp:
            assert "Written From The Shell" in resp.read().decode()
        # ...and logs in the user createsuperuser made.
        _admin_session(base_url, "cli-admin", "from-the-cli-42")
        # Each process says whether it started the store's server or joined it.
        for name, (_, err) in results.items():
            assert re.search(r"(joined its server|started its server) \(pid \d+", err), \
                f"{name} did not say how it reached the store:\n{err}"
    finally:
        runserver.terminate()
        try:
            runserver.wait(timeout=30)
        except subprocess.TimeoutExpired:
            runserver.kill()
    if runserver.returncode not in (0, -15):
        pytest.fail(f"runserver exited with {runserver.returncode}:\n{log.read_text()}")
    assert Path(env["DJONGO_DEMO_DATA_DIR"]).stat().st_mode & 0o777 == 0o700
