from django.apps import AppConfig


class DjongoConfig(AppConfig):
    """``"djongo"`` in ``INSTALLED_APPS`` adds djongo's management commands.

    The database backend itself needs no entry there; the app has no models.
    """

    name = "djongo"
    verbose_name = "djongo"
