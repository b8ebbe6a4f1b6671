"""``inspectdb`` of a collection Django did not create (documents inserted with pymongo):
the models it prints import and run as written, and the admin lists and edits them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tests.test_admin_browser import DEMO, _manage

FILL = """
import datetime
from bson import ObjectId
from django.db import connection
connection.ensure_connection()
db = connection.mongo_database
db.legacy_products.insert_many([
    {"name": "Lamp", "price": 12.5, "tags": ["home", "light"], "dims": {"w": 10, "h": 30},
     "stock": 3, "added": datetime.datetime(2024, 1, 2, 9, 30), "maker": ObjectId()},
    {"name": "Desk", "price": 120.0, "tags": [], "stock": 2**40,
     "added": datetime.datetime(2024, 2, 2, 10, 0)},
    {"name": "Chair", "price": None, "sku": "C-1", "stock": 7},
])
"""

# Runs in a process whose settings add the generated app: the admin, logged in, lists the
# collection and saves an edited document through the change form as a browser would post it.
ADMIN = """
import re
from html.parser import HTMLParser

import django
django.setup()
from django.contrib.auth import get_user_model
from django.test import Client
from django.test.utils import setup_test_environment
from legacy.models import LegacyProducts

setup_test_environment()


class FormFields(HTMLParser):
    def __init__(self):
        super().__init__()
        self.data, self._textarea = {}, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in ("submit", "checkbox"):
            self.data[name] = attrs.get("value") or ""
        elif tag == "input" and name and "checked" in attrs:
            self.data[name] = "on"
        elif tag == "textarea" and name:
            self._textarea, self.data[name] = name, ""

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None


admin = get_user_model().objects.filter(username="inspector").first() or \\
    get_user_model().objects.create_superuser("inspector", "i@example.com", "pw-inspect-42")
client = Client()
client.force_login(admin)

listing = client.get("/admin/legacy/legacyproducts/")
assert listing.status_code == 200, listing.status_code
page = listing.content.decode()
assert "Lamp" in page and "Desk" in page and "Chair" in page, page[:3000]

lamp = LegacyProducts.objects.get(name="Lamp")
url = f"/admin/legacy/legacyproducts/{lamp.pk}/change/"
form = client.get(url)
assert form.status_code == 200, form.status_code
fields = FormFields()
fields.feed(form.content.decode())
data = dict(fields.data, name="Lamp (edited)", stock="4", _save="Save")
saved = client.post(url, data)
assert saved.status_code == 302, saved.content.decode()[:5000]
print("EDITED", LegacyProducts.objects.get(pk=lamp.pk).name)
"""


def test_inspectdb_models_of_a_pymongo_collection_run_in_the_admin(tmp_path):
    env = dict(os.environ)
    env.update(DJONGO_DEMO_DATA_DIR=str(tmp_path / "data"),
               DJANGO_SETTINGS_MODULE="blogsite.settings", PYTHONUNBUFFERED="1")
    _manage(env, "migrate", "--no-input")
    _manage(env, "shell", "-c", FILL)

    models = _manage(env, "inspectdb", "legacy_products", "--sample-size", "3")
    code = models[models.index("# This is an auto-generated"):]
    code = code[: code.index("db_table = 'legacy_products'") + len("db_table = 'legacy_products'")]
    assert "from djongo import models" in code
    assert "_id = models.ObjectIdField(primary_key=True)" in code
    assert "name = models.TextField()" in code
    # Missing from some documents, or null in one: nullable.
    assert "price = models.FloatField(blank=True, null=True)" in code
    assert "sku = models.TextField(blank=True, null=True)" in code
    assert "maker = models.GenericObjectIdField(blank=True, null=True)" in code
    assert "tags = models.JSONField(blank=True, null=True)" in code
    assert "dims = models.JSONField(blank=True, null=True)" in code
    # Wider than 32 bits in one document: one BigIntegerField, not a mix.
    assert "stock = models.BigIntegerField()\n" in code

    app = tmp_path / "app"
    (app / "legacy").mkdir(parents=True)
    (app / "legacy" / "__init__.py").write_text("")
    (app / "legacy" / "models.py").write_text(code + "\n")
    (app / "legacy" / "admin.py").write_text(textwrap.dedent("""
        from django.contrib import admin
        from .models import LegacyProducts

        admin.site.register(LegacyProducts, list_display=["name", "price", "stock"])
    """))
    (app / "inspected_settings.py").write_text(textwrap.dedent("""
        from blogsite.settings import *  # noqa: F403
        INSTALLED_APPS = [*INSTALLED_APPS, "legacy"]  # noqa: F405
        ALLOWED_HOSTS = ["*"]
    """))
    env.update(DJANGO_SETTINGS_MODULE="inspected_settings",
               PYTHONPATH=os.pathsep.join([str(app), str(DEMO)]))
    proc = subprocess.run([sys.executable, "-c", ADMIN], cwd=DEMO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "EDITED Lamp (edited)" in proc.stdout

    # The edit reached the document; what the model does not show stays as it was.
    check = _manage(env, "shell", "-c", textwrap.dedent("""
        from django.db import connection
        connection.ensure_connection()
        doc = connection.mongo_database.legacy_products.find_one({"name": "Lamp (edited)"})
        print("DOC", doc["stock"], doc["dims"], doc["tags"], type(doc["_id"]).__name__)
    """))
    assert "DOC 4 {'w': 10, 'h': 30} ['home', 'light'] ObjectId" in check
