"""django-debug-toolbar on the demo: its SQL panel lists each query's SQL and, with the
``SHOW_COMMANDS`` setting, the MongoDB commands the SQL compiled to."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tests.test_admin_browser import DEMO, _manage

SETTINGS = """
from blogsite.settings import *  # noqa: F403

DEBUG = True
INTERNAL_IPS = ["127.0.0.1"]
ALLOWED_HOSTS = ["testserver"]
INSTALLED_APPS = [*INSTALLED_APPS, "debug_toolbar"]  # noqa: F405
MIDDLEWARE = ["debug_toolbar.middleware.DebugToolbarMiddleware", *MIDDLEWARE]  # noqa: F405
ROOT_URLCONF = "toolbar_urls"
DATABASES["default"]["SHOW_COMMANDS"] = True  # noqa: F405
# The toolbar switches itself off under test runners; this process is a site, not a test.
DEBUG_TOOLBAR_CONFIG = {"IS_RUNNING_TESTS": False}
"""

URLS = """
from django.urls import include, path

from blogsite.urls import urlpatterns as site

urlpatterns = [*site, path("__debug__/", include("debug_toolbar.urls"))]
"""

BROWSE = """
import html
import re

import django
django.setup()
from django.contrib.auth import get_user_model
from django.test import Client

from blog.models import Author

Author.objects.get_or_create(name="Toolbar Author", email="toolbar@example.com")
user = get_user_model().objects.create_superuser("toolbar", "t@example.com", "pw-toolbar-42")
client = Client(REMOTE_ADDR="127.0.0.1")
client.force_login(user)
page = client.get("/admin/blog/author/", {"q": "Toolbar"})
assert page.status_code == 200, page.status_code
request_id = re.search(r'data-request-id="([^"]+)"', page.content.decode()).group(1)
panel = client.get("/__debug__/render_panel/", {"request_id": request_id, "panel_id": "SQLPanel"})
assert panel.status_code == 200, panel.status_code
text = html.unescape(re.sub(r"<[^>]+>", "", panel.json()["content"]))
print(text)
"""


def test_the_sql_panel_shows_the_mongodb_commands(tmp_path):
    env = dict(os.environ)
    env.update(DJONGO_DEMO_DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1",
               DJANGO_SETTINGS_MODULE="blogsite.settings")
    _manage(env, "migrate", "--no-input")
    (tmp_path / "toolbar_settings.py").write_text(textwrap.dedent(SETTINGS))
    (tmp_path / "toolbar_urls.py").write_text(textwrap.dedent(URLS))
    env.update(DJANGO_SETTINGS_MODULE="toolbar_settings",
               PYTHONPATH=os.pathsep.join([str(tmp_path), str(DEMO)]))
    proc = subprocess.run([sys.executable, "-c", BROWSE], cwd=DEMO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    panel = " ".join(proc.stdout.split())
    # The changelist's search: its SQL (with the value), then what it became.
    assert "blog_author" in panel and "Toolbar" in panel
    assert "MongoDB:" in panel
    assert '"op": "find"' in panel or '"op": "aggregate"' in panel
    assert '"collection": "blog_author"' in panel
