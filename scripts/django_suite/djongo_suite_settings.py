"""Settings for Django's own test suite (tests/runtests.py) on djongo.

Both aliases Django's suite needs are two databases of one embedded store
(under DJONGO_SUITE_DATA_DIR, one per run), the way two aliases pointing at
one MongoDB server share it: their transactions run side by side, as
multi-database tests need.
"""

import os

_data_dir = os.environ["DJONGO_SUITE_DATA_DIR"]

DATABASES = {
    "default": {"ENGINE": "djongo", "NAME": "django_default", "DATA_DIR": f"{_data_dir}/store"},
    "other": {"ENGINE": "djongo", "NAME": "django_other", "DATA_DIR": f"{_data_dir}/store"},
}
# DJONGO_SUITE_STORE_SERVER=in-process: the suite's process serves the store
# itself (STORE_SERVER, docs/multiprocess.md) instead of a server process.
if os.environ.get("DJONGO_SUITE_STORE_SERVER"):
    for _alias in DATABASES.values():
        _alias["STORE_SERVER"] = os.environ["DJONGO_SUITE_STORE_SERVER"]
SECRET_KEY = "django_tests_secret_key"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = False
TEST_RUNNER = "djongo_suite_runner.RecordingRunner"
