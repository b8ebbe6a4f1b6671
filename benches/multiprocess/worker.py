"""One process of the benchmark: connects, says "ready", waits for "go" on
stdin, runs its share of the load, prints what it did as JSON."""

import json
import os
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benches.multiprocess.settings")

import django  # noqa: E402

django.setup()

from tests.loadapp import clients, traffic  # noqa: E402
from tests.loadapp.models import Account  # noqa: E402


def main(owner: str, seed: int, ops: int) -> None:
    Account.objects.count()  # connected (and, on djongo, joined the store's server)
    print("ready", flush=True)
    sys.stdin.readline()
    client = clients.Client(owner, seed)
    start = time.time()
    for name, args in client.plan(ops):
        try:
            client.acknowledged(name, args, traffic.run(name, args))
        except Exception as exc:
            client.errors.append(f"{name}: {type(exc).__name__}: {exc}")
    end = time.time()
    print(json.dumps({"ops": len(client.done), "start": start, "end": end,
                      "errors": client.errors}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
