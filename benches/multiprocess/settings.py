"""Django settings of the multi-process benchmark: the load tests' app on either
the embedded store (djongo) or Django's sqlite3 backend in WAL mode.

BENCH_BACKEND=djongo|sqlite, BENCH_DATA=<a directory for djongo, a file for sqlite>.
"""

import os

SECRET_KEY = "bench-only"
USE_TZ = True
INSTALLED_APPS = ["tests.loadapp"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if os.environ["BENCH_BACKEND"] == "djongo":
    DATABASES = {"default": {"ENGINE": "djongo", "NAME": "bench",
                             "DATA_DIR": os.environ["BENCH_DATA"]}}
else:
    DATABASES = {"default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["BENCH_DATA"],
        "OPTIONS": {
            # WAL lets readers run beside the writer; FULL syncs each commit,
            # as the embedded store makes each acknowledged write durable.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
            # Writers queue for the lock up front instead of failing with
            # "database is locked" when a read transaction turns into a write.
            "transaction_mode": "IMMEDIATE",
            "timeout": 60,
        },
    }}
