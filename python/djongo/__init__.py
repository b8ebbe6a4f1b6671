"""djongo-rs: a Django database backend for MongoDB.

``DATABASES = {"default": {"ENGINE": "djongo", "NAME": "blog"}}`` runs on the
embedded engine; add ``"CLIENT": {"host": "mongodb://..."}`` for a MongoDB
server. See README.md for how the server is chosen.
"""

__version__ = "0.1.0"
