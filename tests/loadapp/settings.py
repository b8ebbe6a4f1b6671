"""Settings for the load tests' processes: the tests' settings plus the load app."""

from tests.settings import *  # noqa: F401,F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.loadapp"]
ROOT_URLCONF = "tests.loadapp.urls"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
