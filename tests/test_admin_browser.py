"""End to end: the demo blog in Django's admin, driven through a real headless Chromium.

The demo project (demo/) runs on the embedded engine with its data in a temporary
directory (``DJONGO_DEMO_DATA_DIR``): migrate, ensure_superuser, seed_demo, then
``runserver --noreload`` on a free loopback port. Chromium is Debian's ``/usr/bin/chromium``
(``scripts/setup --with-browser`` installs it), driven by Playwright without
``playwright install``. Screenshots of every step go to ``artifacts/admin_browser/``.

Nothing here skips: a missing browser, a backend that fails to import or a server that
does not come up is a test failure.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo"
ARTIFACTS = ROOT / "artifacts" / "admin_browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
USERNAME, PASSWORD = "admin", "djongo-demo"  # demo/blog/management/commands/ensure_superuser.py

# The headlines seed_demo loads (demo/blog/management/commands/seed_demo.py).
SEEDED_HEADLINES = [
    "Please Please Me",
    "With the Beatles",
    "A Hard Day's Night",
    "Help!",
    "Rubber Soul",
    "Abbey Road",
    "Embedding versus referencing",
    "Aggregation pipelines explained",
    "Indexes that allow many NULLs",
    "Parsing SQL with sqlparser",
    "From SQL to $lookup",
    "An embedded engine on redb",
]
PER_PAGE = 5  # EntryAdmin.list_per_page

# Playwright waits for every expectation up to this long (ms); the dev build is not fast.
TIMEOUT_MS = 30_000


# --- the demo server ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _manage(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    """Run ``demo/manage.py`` with *args*; fail the test (with its output) on error."""
    cmd = [sys.executable, "manage.py", *args]
    try:
        proc = subprocess.run(
            cmd,
            cwd=DEMO,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"`manage.py {' '.join(args)}` timed out after {timeout}s:\n{exc.output}")
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        pytest.fail(f"`manage.py {' '.join(args)}` exited with {proc.returncode}:\n{output}")
    return output


def _wait_for_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    last_error: object = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"runserver exited with {proc.returncode} before serving {url}:\n"
                f"{log.read_text(errors='replace')}"
            )
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
                last_error = f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            last_error = f"HTTP {exc.code}"
        except OSError as exc:
            last_error = exc
        time.sleep(0.3)
    pytest.fail(
        f"runserver did not serve {url} within {timeout}s (last error: {last_error}):\n"
        f"{log.read_text(errors='replace')}"
    )


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo project, migrated and seeded in a fresh data dir, served on a free port."""
    workdir = tmp_path_factory.mktemp("demo")
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # screenshots of this run only
    ARTIFACTS.mkdir(parents=True)
    env = dict(os.environ)
    env.update(
        DJONGO_DEMO_DATA_DIR=str(workdir / "djongo-data"),
        DJANGO_SETTINGS_MODULE="blogsite.settings",
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    _manage(env, "migrate", "--no-input")
    _manage(env, "ensure_superuser")
    seeded = _manage(env, "seed_demo")
    assert "12 entries in total" in seeded, seeded
    # Running it again changes nothing: the command is idempotent.
    again = _manage(env, "seed_demo")
    assert "0 authors and 0 entries added" in again, again

    with runserver(env, workdir / "runserver.log") as base_url:
        yield base_url


@contextlib.contextmanager
def runserver(env: dict[str, str], log: Path) -> Iterator[str]:
    """``manage.py runserver`` of the demo (settings from *env*) on a free loopback port,
    until the block ends; its log is kept in the artifacts."""
    port = _free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=DEMO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_http(f"{base_url}/admin/login/", proc, log)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, ARTIFACTS / log.name)


# --- the browser -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory):
    """A headless Debian Chromium with a fresh profile, driven by Playwright."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"{CHROMIUM} is missing: run `scripts/setup --with-browser`")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError as exc:  # the [test] extras are not installed
        pytest.fail(f"Python package playwright is missing ({exc}): run `scripts/setup`")

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            user_data_dir=str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser_context, request):
    """A new tab; on failure, its screenshot is saved as artifacts/admin_browser/FAILED-*.png."""
    tab = browser_context.new_page()
    failed_before = request.session.testsfailed
    try:
        yield tab
    finally:
        # The call phase's failure is counted before fixtures are torn down.
        if request.session.testsfailed > failed_before:
            with contextlib.suppress(Exception):
                _shot(tab, f"FAILED-{request.node.name}")
        tab.close()


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _login(page, base_url: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{base_url}/admin/")
    if "/admin/login/" not in page.url:
        return  # the profile already holds a session
    expect(page.locator("#id_username")).to_be_visible()
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_contain_text("Django administration")
    expect(page.locator("body")).to_contain_text("Site administration")


def _rows(page) -> list[str]:
    """The first-column texts (headline / name) of the changelist on screen."""
    return [t.strip() for t in page.locator("#result_list tbody tr th").all_inner_texts()]


def _expect_success(page, text: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator("ul.messagelist li.success")).to_contain_text(text)


# --- the tests ---------------------------------------------------------------------------
# They run in file order against one server; each leaves the seeded data as it found it.


def test_login(demo_server, page):
    from playwright.sync_api import expect

    page.goto(f"{demo_server}/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next=/admin/$"))
    # A wrong password is refused...
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", "not-the-password")
    page.click("input[type=submit]")
    expect(page.locator(".errornote")).to_contain_text("Please enter the correct username")
    _shot(page, "01-login-refused")
    # ...the documented one works.
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("body")).to_contain_text("Site administration")
    app = page.locator("#content-main .app-blog")
    expect(app.get_by_role("link", name="Entries")).to_be_visible()
    expect(app.get_by_role("link", name="Authors")).to_be_visible()
    _shot(page, "02-admin-index")


def test_entry_changelist_search_sort_paginate(demo_server, page):
    from playwright.sync_api import expect

    _login(page, demo_server)
    page.click("#content-main .app-blog >> text=Entries")
    expect(page.locator("h1")).to_have_text("Select entry to change")
    expect(page.locator("p.paginator")).to_contain_text(f"{len(SEEDED_HEADLINES)} entries")
    assert len(_rows(page)) == PER_PAGE
    # Default ordering: newest first.
    expect(page.locator("#result_list tbody tr").first).to_contain_text(
        "An embedded engine on redb"
    )
    expect(page.locator("#changelist-filter")).to_contain_text("By pub date")
    _shot(page, "03-entry-changelist")

    # Search (case-insensitive, on the headline).
    page.fill("#searchbar", "road")
    page.press("#searchbar", "Enter")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    assert _rows(page) == ["Abbey Road"]
    expect(page.locator("#changelist-search")).to_contain_text("1 result")
    _shot(page, "04-entry-search")

    page.fill("#searchbar", "IN")
    page.press("#searchbar", "Enter")
    expected = [h for h in SEEDED_HEADLINES if "in" in h.lower()]
    expect(page.locator("#changelist-search")).to_contain_text(f"{len(expected)} results")
    expect(page.locator("#result_list tbody tr")).to_have_count(min(len(expected), PER_PAGE))
    assert set(_rows(page)) <= set(expected)

    # Full-text search (the demo's TextIndex, MongoDB's $text): "diary" is in no
    # headline, but stems like "Diaries" in the text of the Mongo Diaries entries.
    page.fill("#searchbar", "diary")
    page.press("#searchbar", "Enter")
    expect(page.locator("#changelist-search")).to_contain_text("3 results")
    assert sorted(_rows(page)) == ["Aggregation pipelines explained",
                                   "Embedding versus referencing",
                                   "Indexes that allow many NULLs"]
    _shot(page, "04b-entry-full-text-search")

    # Sort by the headline column, ascending then descending.
    page.fill("#searchbar", "")
    page.press("#searchbar", "Enter")
    expect(page.locator("p.paginator")).to_contain_text(f"{len(SEEDED_HEADLINES)} entries")
    by_headline = sorted(SEEDED_HEADLINES)
    page.click("#result_list thead th.column-headline a")
    expect(page.locator("#result_list thead th.column-headline")).to_have_class(
        re.compile(r"\bascending\b")
    )
    expect(page.locator("#result_list tbody tr").first).to_contain_text(by_headline[0])
    assert _rows(page) == by_headline[:PER_PAGE]
    _shot(page, "05-entry-sorted-ascending")

    page.click("#result_list thead th.column-headline a.toggle")
    expect(page.locator("#result_list thead th.column-headline")).to_have_class(
        re.compile(r"\bdescending\b")
    )
    expect(page.locator("#result_list tbody tr").first).to_contain_text(by_headline[-1])
    assert _rows(page) == by_headline[::-1][:PER_PAGE]
    _shot(page, "06-entry-sorted-descending")

    # Page 2 keeps the sort order.
    page.locator("p.paginator").get_by_role("link", name="2", exact=True).click()
    expect(page).to_have_url(re.compile(r"[?&]p=2\b"))
    expect(page.locator("#result_list tbody tr").first).to_contain_text(by_headline[::-1][PER_PAGE])
    assert _rows(page) == by_headline[::-1][PER_PAGE : 2 * PER_PAGE]
    expect(page.locator("p.paginator .this-page")).to_have_text("2")
    _shot(page, "07-entry-page-2")


def _blog_field(page, name: str):
    """The input of the embedded Blog's field *name*, inside the Entry form's blog row.

    Found by its name (``blog-name``, ``blog_name``...) or else by its label ("Name").
    """
    row = page.locator(".form-row.field-blog")
    by_name = row.locator(f"input[name$='{name}'], textarea[name$='{name}']")
    return by_name.or_(row.get_by_label(name.capitalize())).first


def test_entry_add_change_delete(demo_server, page):
    from playwright.sync_api import expect

    _login(page, demo_server)
    page.goto(f"{demo_server}/admin/blog/entry/")
    page.click(".object-tools a.addlink")
    expect(page.locator("h1")).to_have_text("Add entry")
    # The embedded Blog is edited in the Entry form itself.
    _blog_field(page, "name").fill("Browser Blog")
    _blog_field(page, "tagline").fill("Written by headless Chromium.")
    page.fill("#id_headline", "Browser test entry")
    page.fill("#id_body_text", "Added through the admin.")
    page.fill("#id_pub_date", "2025-01-02")
    page.fill("#id_n_comments", "3")
    page.select_option("#id_author", label="Ringo Starr")
    page.select_option("#id_contributors", label=["John Lennon", "Paul McCartney"])
    _shot(page, "08-entry-add-form")
    page.click("input[name=_save]")

    _expect_success(page, "was added successfully")
    expect(page.locator("#result_list")).to_contain_text("Browser test entry")
    expect(page.locator("p.paginator")).to_contain_text(f"{len(SEEDED_HEADLINES) + 1} entries")
    row = page.locator("#result_list tbody tr", has_text="Browser test entry")
    expect(row).to_contain_text("Ringo Starr")
    expect(row.locator("td.field-n_comments")).to_have_text("3")
    _shot(page, "09-entry-added")

    # Change it: the form shows what was saved, including the embedded blog.
    row.get_by_role("link", name="Browser test entry").click()
    expect(page.locator("h1")).to_have_text("Change entry")
    expect(_blog_field(page, "name")).to_have_value("Browser Blog")
    expect(_blog_field(page, "tagline")).to_have_value("Written by headless Chromium.")
    expect(page.locator("#id_pub_date")).to_have_value("2025-01-02")
    selected = page.eval_on_selector_all(
        "#id_contributors option:checked", "els => els.map(e => e.textContent.trim())"
    )
    assert sorted(selected) == ["John Lennon", "Paul McCartney"]
    page.fill("#id_headline", "Browser test entry (edited)")
    page.fill("#id_n_comments", "4")
    _blog_field(page, "tagline").fill("Edited by headless Chromium.")
    page.select_option("#id_contributors", label=["George Harrison"])
    _shot(page, "10-entry-change-form")
    page.click("input[name=_save]")

    _expect_success(page, "was changed successfully")
    row = page.locator("#result_list tbody tr", has_text="Browser test entry (edited)")
    expect(row).to_have_count(1)
    expect(row.locator("td.field-n_comments")).to_have_text("4")
    _shot(page, "11-entry-changed")

    row.get_by_role("link", name="Browser test entry (edited)").click()
    expect(_blog_field(page, "name")).to_have_value("Browser Blog")
    expect(_blog_field(page, "tagline")).to_have_value("Edited by headless Chromium.")
    selected = page.eval_on_selector_all(
        "#id_contributors option:checked", "els => els.map(e => e.textContent.trim())"
    )
    assert selected == ["George Harrison"]

    # Delete it through the confirmation page.
    page.click(".submit-row a.deletelink")
    expect(page.locator("h1")).to_have_text("Delete")
    expect(page.locator("#content")).to_contain_text("Are you sure")
    _shot(page, "12-entry-delete-confirmation")
    page.click("#content form input[type=submit]")
    _expect_success(page, "was deleted successfully")
    expect(page.locator("#result_list")).not_to_contain_text("Browser test entry")
    expect(page.locator("p.paginator")).to_contain_text(f"{len(SEEDED_HEADLINES)} entries")
    _shot(page, "13-entry-deleted")


def test_author_add_change_delete(demo_server, page):
    from playwright.sync_api import expect

    _login(page, demo_server)
    page.goto(f"{demo_server}/admin/")
    page.click("#content-main .app-blog >> text=Authors")
    expect(page.locator("h1")).to_have_text("Select author to change")
    # ordering = name
    assert _rows(page) == ["George Harrison", "John Lennon", "Paul McCartney", "Ringo Starr"]
    _shot(page, "14-author-changelist")

    # The unique email is enforced.
    page.click(".object-tools a.addlink")
    page.fill("#id_name", "Impostor")
    page.fill("#id_email", "john@example.com")
    page.click("input[name=_save]")
    expect(page.locator(".errorlist")).to_contain_text("Author with this Email already exists")
    _shot(page, "15-author-duplicate-email")

    page.fill("#id_name", "Test Author")
    page.fill("#id_email", "test.author@example.com")
    page.click("input[name=_save]")
    _expect_success(page, "was added successfully")
    expect(page.locator("#result_list")).to_contain_text("test.author@example.com")
    _shot(page, "16-author-added")

    # Search by email.
    page.fill("#searchbar", "test.author")
    page.press("#searchbar", "Enter")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    assert _rows(page) == ["Test Author"]

    page.locator("#result_list").get_by_role("link", name="Test Author").click()
    expect(page.locator("h1")).to_have_text("Change author")
    expect(page.locator("#id_email")).to_have_value("test.author@example.com")
    page.fill("#id_name", "Test Author Renamed")
    page.click("input[name=_save]")
    _expect_success(page, "was changed successfully")
    expect(page.locator("#result_list")).to_contain_text("Test Author Renamed")
    _shot(page, "17-author-changed")

    page.locator("#result_list").get_by_role("link", name="Test Author Renamed").click()
    page.click(".submit-row a.deletelink")
    expect(page.locator("#content")).to_contain_text("Are you sure")
    _shot(page, "18-author-delete-confirmation")
    page.click("#content form input[type=submit]")
    _expect_success(page, "was deleted successfully")
    # The changelist keeps the search: nothing matches any more.
    expect(page.locator("#changelist-search")).to_contain_text("0 results")
    page.goto(f"{demo_server}/admin/blog/author/")
    expect(page.locator("p.paginator")).to_contain_text("4 authors")
    assert _rows(page) == ["George Harrison", "John Lennon", "Paul McCartney", "Ringo Starr"]
    _shot(page, "19-author-deleted")
