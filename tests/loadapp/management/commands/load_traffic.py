"""``manage.py load_traffic OWNER SEED COUNT OUT``: the load tests' operations,
run by a management command, with what was acknowledged written to OUT."""

import json
import time

from django.core.management.base import BaseCommand

from tests.loadapp import clients, traffic


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("owner")
        parser.add_argument("seed", type=int)
        parser.add_argument("count", type=int)
        parser.add_argument("out")
        parser.add_argument("--retries", type=int, default=0,
                            help="repeat an operation that failed transiently this often")

    def handle(self, owner, seed, count, out, retries, **options):
        client = clients.Client(owner, seed)
        for name, args in client.plan(count):
            for attempt in range(retries + 1):
                try:
                    result = traffic.run(name, args)
                except Exception as exc:
                    if traffic.is_transient(exc) and attempt < retries:
                        client.transient.append(time.time())
                        continue
                    client.errors.append(f"{name}: {type(exc).__name__}: {exc}")
                    break
                client.acknowledged(name, args, result)
                break
        with open(out, "w") as f:
            json.dump(client.report(), f)
