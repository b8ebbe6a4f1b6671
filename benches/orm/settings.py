"""Settings for one benchmark process: BENCH_BACKEND (sqlite | djongo), BENCH_DIR (where
the database lives) and, for djongo, BENCH_STORE_SERVER (the STORE_SERVER setting: separate
or in-process) come from the environment."""

import os

SECRET_KEY = "bench-only"
USE_TZ = True
INSTALLED_APPS = ["benchapp"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
_dir = os.environ["BENCH_DIR"]
if os.environ["BENCH_BACKEND"] == "sqlite":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(_dir, "bench.sqlite3"),
        }
    }
else:
    DATABASES = {"default": {"ENGINE": "djongo", "NAME": "bench", "DATA_DIR": _dir,
                             "STORE_SERVER": os.environ.get("BENCH_STORE_SERVER", "separate")}}
