"""Settings for Django's own test suite (tests/runtests.py) on djongo.

Both aliases Django's suite needs run on the embedded engine; each run gets
its own data directory (DJONGO_SUITE_DATA_DIR), so parallel runs never share
a store.
"""

import os

_data_dir = os.environ["DJONGO_SUITE_DATA_DIR"]

DATABASES = {
    "default": {"ENGINE": "djongo", "NAME": "django_default", "DATA_DIR": _data_dir},
    "other": {"ENGINE": "djongo", "NAME": "django_other", "DATA_DIR": _data_dir},
}
SECRET_KEY = "django_tests_secret_key"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = False
TEST_RUNNER = "djongo_suite_runner.RecordingRunner"
