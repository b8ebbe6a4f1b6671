"""Settings for the backend's end-to-end tests: djongo on the embedded engine."""

import os
import tempfile
from urllib.parse import quote

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
DATA_DIR = os.environ.get("DJONGO_TEST_DATA_DIR") or tempfile.mkdtemp(prefix="djongo-tests-")
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
_STANDALONE = tempfile.mkdtemp(prefix="djongo-standalone-")
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
