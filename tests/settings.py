"""Settings for the backend's end-to-end tests: djongo on the embedded engine."""

import atexit
import os
import shutil
import tempfile
from urllib.parse import quote


def _scratch_dir(prefix: str) -> str:
    """A temporary directory that the process which made it removes at exit
    (not a child forked from it), so that test runs leave nothing in /tmp."""
    path = tempfile.mkdtemp(prefix=prefix)
    owner = os.getpid()

    def remove() -> None:
        if os.getpid() == owner:
            shutil.rmtree(path, ignore_errors=True)

    atexit.register(remove)
    return path


SECRET_KEY = "tests-only"
USE_TZ = True
DEBUG = False
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "djongo",
    "tests.blogapp",
    "tests.filesapp",
    "tests.copyapp",
    "tests.fieldsapp",
    "tests.planapp",
    "tests.spec.embedded",
    "tests.spec.validators",
    "tests.spec.integrity",
    "tests.spec.nested",
    "tests.validationapp",
    "tests.writeapp",
    "tests.readmeapp",      # models of the README examples, in isolated registries only
]
DATA_DIR = os.environ.get("DJONGO_TEST_DATA_DIR") or _scratch_dir("djongo-tests-")
DATABASES = {
    "default": {"ENGINE": "djongo", "NAME": "blog", "DATA_DIR": DATA_DIR,
                "SCHEMA_VALIDATION": True},
    # The SQL database that `manage.py copydata --from sqlite` copies from.
    "sqlite": {"ENGINE": "django.db.backends.sqlite3",
               "NAME": DATA_DIR + "-source.sqlite3"},
}
# DJONGO_TEST_STORE_SERVER=in-process: the process that finds the store unserved serves it
# itself (tests/test_store_in_process.py).
if os.environ.get("DJONGO_TEST_STORE_SERVER"):
    DATABASES["default"]["STORE_SERVER"] = os.environ["DJONGO_TEST_STORE_SERVER"]
# DJONGO_TEST_MONGODB_URI=mongodb://host:port runs the tests against that server (MongoDB,
# or FerretDB for what it implements) instead of the embedded engine.
if os.environ.get("DJONGO_TEST_MONGODB_URI"):
    DATABASES["default"] = {"ENGINE": "djongo", "NAME": "blog", "SCHEMA_VALIDATION": True,
                            "CLIENT": {"host": os.environ["DJONGO_TEST_MONGODB_URI"]}}
# A standalone djongo-server (started by tests/conftest.py) reached through CLIENT, as a
# MongoDB server is: tests parametrized by the `server` fixture run on both.
# Subprocesses that tests start import these settings too: they share the directory
# (through the environment) rather than each leaving one behind.
_STANDALONE = os.environ.get("DJONGO_TEST_STANDALONE_DIR") or _scratch_dir("djongo-standalone-")
os.environ["DJONGO_TEST_STANDALONE_DIR"] = _STANDALONE
STANDALONE_DATA_DIR = os.path.join(_STANDALONE, "data")
STANDALONE_SOCKET = os.path.join(_STANDALONE, "server.sock")
DATABASES["standalone"] = {
    "ENGINE": "djongo", "NAME": "blog", "SCHEMA_VALIDATION": True,
    "CLIENT": {"host": "mongodb://" + quote(STANDALONE_SOCKET, safe="")},
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ROOT_URLCONF = "tests.urls"
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
