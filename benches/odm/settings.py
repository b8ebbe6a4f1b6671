"""Settings for one worker of the ODM benchmark.

ODM_BACKEND picks the backend (``djongo``: the embedded default, joining the store's
server that the driver started on ODM_DBPATH; ``djongo-client``: djongo through CLIENT, i.e.
pymongo, to that same server; ``official``: django-mongodb-backend through pymongo to that
same server). ODM_SOCKET is the server's Unix socket.
"""

import os
from urllib.parse import quote_plus

SECRET_KEY = "bench-only"
USE_TZ = True
INSTALLED_APPS = ["odmapp"]
_backend = os.environ["ODM_BACKEND"]
_uri = "mongodb://" + quote_plus(os.environ["ODM_SOCKET"])

if _backend == "official":
    DATABASES = {
        "default": {"ENGINE": "django_mongodb_backend", "NAME": "odm_official", "HOST": _uri}
    }
    # As the official backend's own performance_tests/perf/settings.py.
    DEFAULT_AUTO_FIELD = "django_mongodb_backend.fields.ObjectIdAutoField"
elif _backend == "djongo-client":
    DATABASES = {
        "default": {"ENGINE": "djongo", "NAME": "odm_djongo_client", "CLIENT": {"host": _uri}}
    }
    DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
else:
    DATABASES = {
        "default": {"ENGINE": "djongo", "NAME": "odm_djongo", "DATA_DIR": os.environ["ODM_DBPATH"]}
    }
    DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
