"""Settings for the same Django tests on Django's own sqlite3 backend.

The yardstick for docs/compatibility.md: each app's tests are counted up to
what SQLite passes. Everything but DATABASES is djongo_suite_settings's.
"""

from djongo_suite_settings import (  # noqa: F401
    DEFAULT_AUTO_FIELD,
    PASSWORD_HASHERS,
    SECRET_KEY,
    TEST_RUNNER,
    USE_TZ,
)

DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3"},
    "other": {"ENGINE": "django.db.backends.sqlite3"},
}
