"""The Django database backend for MongoDB: ``'ENGINE': 'djongo'``."""

from __future__ import annotations

import logging
import logging.config
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.base.base import BaseDatabaseWrapper
from pymongo.errors import OperationFailure

from . import database as Database
from . import json_lookups
from .client import DatabaseClient
from .connection import Connection
from .creation import DatabaseCreation
from .cursor import translate_errors
from .features import DatabaseFeatures
from .introspection import DatabaseIntrospection
from .models.schema_validation import check_setting
from .operations import DatabaseOperations
from .schema import DatabaseSchemaEditor
from .server import check_store_server, choose_server, get_client, get_store
from .validation import DatabaseValidation

logger = logging.getLogger("djongo")

# The server aborted the transaction already (MongoDB's NoSuchTransaction).
NO_SUCH_TRANSACTION = 251

# Keys a djongo settings block may hold beyond Django's own.
DJONGO_SETTINGS = {"CLIENT", "ENFORCE_SCHEMA", "LOGGING", "DATA_DIR", "SCHEMA_VALIDATION",
                   "SHOW_COMMANDS", "STORE_SERVER"}
DJANGO_SETTINGS = {
    "ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS", "TEST",
    "ATOMIC_REQUESTS", "AUTOCOMMIT", "CONN_MAX_AGE", "CONN_HEALTH_CHECKS", "TIME_ZONE",
}

_configured_logging: set[str] = set()

json_lookups.register()


def _varchar(params: dict[str, Any]) -> str:
    return "varchar(%s)" % params["max_length"] if params.get("max_length") else "varchar"


class DatabaseWrapper(BaseDatabaseWrapper):
    vendor = "djongo"
    display_name = "MongoDB (djongo)"

    data_types = {
        "AutoField": "integer",
        "BigAutoField": "bigint",
        "SmallAutoField": "smallint",
        "BinaryField": "blob",
        "BooleanField": "bool",
        "CharField": _varchar,
        "DateField": "date",
        "DateTimeField": "datetime",
        "DecimalField": "decimal(%(max_digits)s, %(decimal_places)s)",
        "DurationField": "bigint",
        "FileField": "varchar(%(max_length)s)",
        "FilePathField": "varchar(%(max_length)s)",
        "FloatField": "real",
        "IntegerField": "integer",
        "BigIntegerField": "bigint",
        "IPAddressField": "char(15)",
        "GenericIPAddressField": "char(39)",
        "JSONField": "json",
        "OneToOneField": "integer",
        "PositiveBigIntegerField": "bigint",
        "PositiveIntegerField": "integer",
        "PositiveSmallIntegerField": "smallint",
        "SlugField": "varchar(%(max_length)s)",
        "SmallIntegerField": "smallint",
        "TextField": "text",
        "TimeField": "time",
        "UUIDField": "char(32)",
    }
    # Column CHECKs, as PostgreSQL's: enforced by the collection's validator.
    data_type_check_constraints = {
        "PositiveBigIntegerField": '"%(column)s" >= 0',
        "PositiveIntegerField": '"%(column)s" >= 0',
        "PositiveSmallIntegerField": '"%(column)s" >= 0',
    }
    data_types_suffix = {
        "AutoField": "AUTOINCREMENT",
        "BigAutoField": "AUTOINCREMENT",
        "SmallAutoField": "AUTOINCREMENT",
    }
    operators = {
        "exact": "= %s",
        "iexact": "ILIKE %s ESCAPE '\\'",
        "contains": "LIKE %s ESCAPE '\\'",
        "icontains": "ILIKE %s ESCAPE '\\'",
        "regex": "~ %s",
        "iregex": "~* %s",
        "gt": "> %s",
        "gte": ">= %s",
        "lt": "< %s",
        "lte": "<= %s",
        "startswith": "LIKE %s ESCAPE '\\'",
        "endswith": "LIKE %s ESCAPE '\\'",
        "istartswith": "ILIKE %s ESCAPE '\\'",
        "iendswith": "ILIKE %s ESCAPE '\\'",
    }
    # Patterns whose right-hand side is an expression (F(), Concat()...).
    pattern_esc = r"REPLACE(REPLACE(REPLACE({}, '\', '\\'), '%%', '\%%'), '_', '\_')"
    pattern_ops = {
        "contains": r"LIKE '%%' || {} || '%%' ESCAPE '\'",
        "icontains": r"ILIKE '%%' || {} || '%%' ESCAPE '\'",
        "startswith": r"LIKE {} || '%%' ESCAPE '\'",
        "istartswith": r"ILIKE {} || '%%' ESCAPE '\'",
        "endswith": r"LIKE '%%' || {} ESCAPE '\'",
        "iendswith": r"ILIKE '%%' || {} ESCAPE '\'",
    }

    Database = Database
    SchemaEditorClass = DatabaseSchemaEditor
    client_class = DatabaseClient
    creation_class = DatabaseCreation
    features_class = DatabaseFeatures
    introspection_class = DatabaseIntrospection
    ops_class = DatabaseOperations
    validation_class = DatabaseValidation

    def get_connection_params(self) -> dict[str, Any]:
        settings_dict = self.settings_dict
        unknown = set(settings_dict) - DJONGO_SETTINGS - DJANGO_SETTINGS
        if unknown:
            raise ImproperlyConfigured(
                f"Unknown key(s) in the DATABASES entry {self.alias!r} for djongo: "
                f"{', '.join(sorted(unknown))}. Known djongo keys: "
                f"{', '.join(sorted(DJONGO_SETTINGS))}."
            )
        if not settings_dict.get("NAME"):
            raise ImproperlyConfigured(
                "settings.DATABASES is missing the NAME of the MongoDB database to use."
            )
        client = settings_dict.get("CLIENT")
        if client is not None and not isinstance(client, dict):
            raise ImproperlyConfigured("DATABASES['%s']['CLIENT'] must be a dict." % self.alias)
        problem = check_setting(settings_dict.get("SCHEMA_VALIDATION", False))
        if problem:
            raise ImproperlyConfigured(
                f"DATABASES[{self.alias!r}]['SCHEMA_VALIDATION'] {problem}.")
        problem = check_store_server(settings_dict)
        if problem:
            raise ImproperlyConfigured(f"DATABASES[{self.alias!r}]['STORE_SERVER'] {problem}.")
        return {
            "name": settings_dict["NAME"],
            "server": choose_server(settings_dict),
            "enforce_schema": bool(settings_dict.get("ENFORCE_SCHEMA", False)),
        }

    def get_new_connection(self, conn_params: dict[str, Any]) -> Connection:
        self._configure_logging()
        server = conn_params["server"]
        client = get_client(server)
        logger.info(
            "djongo: database %r (alias %r) on the %s",
            conn_params["name"], self.alias, server.description,
        )
        return Connection(client, conn_params["name"], conn_params["enforce_schema"],
                          store=get_store(server),
                          foreign_keys=lambda: self.features.supports_foreign_keys)

    def check_constraints(self, table_names=None) -> None:
        """Raises ``IntegrityError`` if the open transaction's writes break a
        foreign key: the checks the engine would run at commit, run now (as
        PostgreSQL's ``SET CONSTRAINTS ALL IMMEDIATE``; every pending check,
        whatever ``table_names``). Outside a transaction each statement was
        checked when it ran. ``loaddata`` and ``TestCase`` call it."""
        if not self.features.supports_foreign_keys:
            return
        self.ensure_connection()
        with self.wrap_database_errors, translate_errors(None):
            session = self.connection.session_for_statement()
            try:
                self.connection.database.command({"checkForeignKeys": 1}, session=session)
            except OperationFailure as exc:
                # A transaction the server aborted already (a failed
                # statement) will commit nothing: there is nothing to check.
                if exc.code != NO_SUCH_TRANSACTION:
                    raise

    def _configure_logging(self) -> None:
        config = self.settings_dict.get("LOGGING")
        if config and self.alias not in _configured_logging:
            logging.config.dictConfig({"disable_existing_loggers": False, **config})
            _configured_logging.add(self.alias)

    def init_connection_state(self) -> None:
        pass

    def create_cursor(self, name=None):
        return self.connection.cursor()

    def _set_autocommit(self, autocommit: bool) -> None:
        with self.wrap_database_errors:
            self.connection.set_autocommit(autocommit)

    def is_usable(self) -> bool:
        try:
            self.connection.ping()
        except Exception:
            return False
        return True

    @property
    def mongo_database(self):
        """The pymongo ``Database`` behind this connection (opened if needed)."""
        self.ensure_connection()
        return self.connection.database
