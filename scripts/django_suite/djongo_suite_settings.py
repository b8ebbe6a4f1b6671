"""Settings for Django's own test suite (tests/runtests.py) on djongo.

Both aliases Django's suite needs run on the embedded engine. Each alias has
its own data directory (under DJONGO_SUITE_DATA_DIR, one per run): the engine
has one writer per store, and multi-database tests hold a transaction open
on both aliases at once.
"""

import os

_data_dir = os.environ["DJONGO_SUITE_DATA_DIR"]

DATABASES = {
    "default": {"ENGINE": "djongo", "NAME": "django_default", "DATA_DIR": f"{_data_dir}/default"},
    "other": {"ENGINE": "djongo", "NAME": "django_other", "DATA_DIR": f"{_data_dir}/other"},
}
SECRET_KEY = "django_tests_secret_key"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = False
TEST_RUNNER = "djongo_suite_runner.RecordingRunner"
