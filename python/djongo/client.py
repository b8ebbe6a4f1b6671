from django.db.backends.base.client import BaseDatabaseClient


class DatabaseClient(BaseDatabaseClient):
    """``manage.py dbshell``: mongosh, pointed at the configured server."""

    executable_name = "mongosh"

    @classmethod
    def settings_to_cmd_args_env(cls, settings_dict, parameters):
        from .server import choose_server

        choice = choose_server(settings_dict)
        if choice.embedded:
            from .server import start_embedded, store_uri

            joined = start_embedded(choice.data_dir)
            host = store_uri(joined.paths.socket, settings_dict["NAME"])
        else:
            host = str(choice.client_kwargs.get("host", "mongodb://localhost:27017"))
        return [cls.executable_name, host, *parameters], None
