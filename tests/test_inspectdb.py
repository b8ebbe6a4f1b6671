"""``inspectdb`` of a collection Django did not create (documents inserted with pymongo):
the models it prints import and run as written, and the admin lists and edits them in a
real headless Chromium (the browser and server helpers of tests/test_admin_browser.py)."""

from __future__ import annotations

import os
import textwrap

from tests.test_admin_browser import (  # noqa: F401 - browser_context and page are fixtures
    DEMO,
    _login,
    _manage,
    _rows,
    _shot,
    browser_context,
    page,
    runserver,
)

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

def test_inspectdb_models_of_a_pymongo_collection_run_in_the_admin(tmp_path, page):  # noqa: F811
    from playwright.sync_api import expect

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
    _manage(env, "ensure_superuser")
    with runserver(env, tmp_path / "runserver-inspectdb.log") as base_url:
        _login(page, base_url)
        page.goto(f"{base_url}/admin/legacy/legacyproducts/")
        expect(page.locator("#result_list")).to_be_visible()
        assert sorted(_rows(page)) == ["Chair", "Desk", "Lamp"]
        _shot(page, "inspectdb-01-changelist")
        page.locator("#result_list tbody tr th a", has_text="Lamp").click()
        expect(page.locator("#id_name")).to_have_value("Lamp")
        page.fill("#id_name", "Lamp (edited)")
        page.fill("#id_stock", "4")
        page.click("input[name=_save]")
        saved = page.locator("ul.messagelist li.success")
        expect(saved).to_contain_text("was changed successfully")
        assert sorted(_rows(page)) == ["Chair", "Desk", "Lamp (edited)"]
        _shot(page, "inspectdb-02-saved")

    # The edit reached the document; what the model does not show stays as it was.
    check = _manage(env, "shell", "-c", textwrap.dedent("""
        from django.db import connection
        connection.ensure_connection()
        doc = connection.mongo_database.legacy_products.find_one({"name": "Lamp (edited)"})
        print("DOC", doc["stock"], doc["dims"], doc["tags"], type(doc["_id"]).__name__)
    """))
    assert "DOC 4 {'w': 10, 'h': 30} ['home', 'light'] ObjectId" in check
