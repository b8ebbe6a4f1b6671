import shutil
import sys

from django.db.backends.base.client import BaseDatabaseClient


class DatabaseClient(BaseDatabaseClient):
    """``manage.py dbshell``: mongosh when it is installed, else djongo's own shell.

    mongosh gets the connection's URI and dbshell's parameters, Django's
    convention for every backend. Without it (it is not on PyPI), the
    built-in shell (``djongo.shell``) runs SQL and MongoDB commands on the
    same connection, so dbshell needs nothing installed.
    """

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

    def runshell(self, parameters):
        if shutil.which(self.executable_name):
            return super().runshell(parameters)
        from .shell import Shell

        status = Shell(self.connection).run(parameters)
        if status:
            # dbshell turns a CalledProcessError into CommandError; this is the same outcome.
            sys.exit(status)
