"""Test databases: a separate MongoDB database on the same server."""

from django.db.backends.base.creation import BaseDatabaseCreation

from .catalog import forget_name_index


class DatabaseCreation(BaseDatabaseCreation):
    def _database_exists(self, name: str) -> bool:
        return name in self.connection.connection.client.list_database_names()

    def _create_test_db(self, verbosity, autoclobber, keepdb=False):
        name = self._get_test_db_name()
        self.connection.ensure_connection()
        client = self.connection.connection.client
        if keepdb:
            return name
        if self._database_exists(name):
            if not autoclobber:
                answer = input(
                    f"Type 'yes' if you would like to try deleting the test database '{name}', "
                    "or 'no' to cancel: "
                )
                if answer != "yes":
                    self.log("Tests cancelled.")
                    raise SystemExit(1)
            if verbosity >= 1:
                self.log(f"Destroying old test database for alias {self.connection.alias}...")
            client.drop_database(name)
            forget_name_index(client, name)
        return name

    def _destroy_test_db(self, test_database_name, verbosity):
        self.connection.ensure_connection()
        client = self.connection.connection.client
        client.drop_database(test_database_name)
        forget_name_index(client, test_database_name)

    def test_db_signature(self):
        """What tells two aliases' test databases apart: besides Django's
        (HOST, PORT, ENGINE, name), the server the settings choose (CLIENT
        or DATA_DIR), so two aliases on different servers each get theirs."""
        from .server import choose_server

        return (*super().test_db_signature(),
                choose_server(self.connection.settings_dict).cache_key)
