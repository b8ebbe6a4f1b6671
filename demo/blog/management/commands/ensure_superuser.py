"""``manage.py ensure_superuser``: the demo's admin login. Idempotent.

Creates the superuser ``admin`` with password ``djongo-demo`` when no user of that name
exists; an existing user keeps its password (and is made staff + superuser).
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

USERNAME = "admin"
PASSWORD = "djongo-demo"
EMAIL = "admin@example.com"


class Command(BaseCommand):
    help = "Create the demo superuser admin / djongo-demo unless it exists."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default=USERNAME)
        parser.add_argument("--password", default=PASSWORD)

    def handle(self, *args, username: str, password: str, **options) -> None:
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            User.objects.create_superuser(username=username, email=EMAIL, password=password)
            self.stdout.write(self.style.SUCCESS(f"ensure_superuser: created {username!r}"))
            return
        if not (user.is_staff and user.is_superuser and user.is_active):
            user.is_staff = user.is_superuser = user.is_active = True
            user.save(update_fields=["is_staff", "is_superuser", "is_active"])
        self.stdout.write(f"ensure_superuser: {username!r} exists (password unchanged)")
