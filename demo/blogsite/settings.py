"""Settings for the djongo-rs demo: a blog on the embedded MongoDB-compatible engine.

The database block names no server: with no ``CLIENT`` key, djongo uses its embedded
engine and keeps the data in ``DATA_DIR`` (default ``<BASE_DIR>/djongo-data``), shared by
runserver and every ``manage.py`` command run meanwhile (docs/multiprocess.md).
For the tests, ``DJONGO_DEMO_DATA_DIR`` points the data somewhere else.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# A demo: not a secret, never use it for anything else.
SECRET_KEY = "django-insecure-djongo-rs-demo-only-9f3c2e1b7a"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # djongo's management commands (repaircounters, copydata).
    "djongo",
    "blog",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "blogsite.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "blogsite.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "djongo",
        "NAME": "blog",
    }
}
if os.environ.get("DJONGO_DEMO_DATA_DIR"):
    DATABASES["default"]["DATA_DIR"] = os.environ["DJONGO_DEMO_DATA_DIR"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"djongo": {"handlers": ["console"], "level": "INFO"}},
}
