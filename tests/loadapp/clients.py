"""Who does what in the load tests, and what each was acknowledged: plain
Python, shared by the test process and the processes under load."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

ACCOUNTS = ["a", "b", "c", "d", "e"]
OPENING_BALANCE = 1000
# Weights of create, get, filter, update, transfer.
MIX = [("create", 3), ("get", 3), ("filter", 2), ("update", 3), ("transfer", 2)]


@dataclass
class Client:
    """One client's share of the load and what it was acknowledged."""

    owner: str
    seed: int
    created: dict[int, int] = field(default_factory=dict)  # id -> seq
    quantities: dict[int, int] = field(default_factory=dict)  # id -> last acknowledged qty
    transfers: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    transient: list[float] = field(default_factory=list)  # when a retried operation failed
    done: list[float] = field(default_factory=list)  # when each operation was acknowledged

    def plan(self, count: int):
        """The client's operations: (name, args) in a fixed random order."""
        rng = random.Random(self.seed)
        names = [n for n, w in MIX for _ in range(w)]
        seq = 0
        for i in range(count):
            name = rng.choice(names)
            if name in ("get", "update") and not self.created:
                name = "create"
            if name == "create":
                seq += 1
                yield name, {"owner": self.owner, "seq": seq}
            elif name in ("get", "update"):
                target = rng.choice(sorted(self.created))
                yield name, {"id": target, "qty": rng.randrange(1, 10_000)}
            elif name == "filter":
                yield name, {"owner": self.owner}
            else:
                src, dst = rng.sample(ACCOUNTS, 2)
                yield name, {"src": src, "dst": dst, "amount": rng.randrange(1, 50),
                             "tag": f"{self.owner}-{i}"}

    def acknowledged(self, name: str, args: dict[str, Any], result: dict[str, Any]) -> None:
        self.done.append(time.time())
        if name == "create":
            self.created[result["id"]] = args["seq"]
        elif name == "get":
            expected = {"owner": self.owner, "seq": self.created[args["id"]]}
            if result != expected:
                self.errors.append(f"get {args['id']}: {result}, expected {expected}")
        elif name == "update":
            if result != {"rows": 1}:
                self.errors.append(f"update {args['id']}: {result}")
            self.quantities[args["id"]] = args["qty"]
        elif name == "transfer":
            self.transfers.append(args["tag"])

    def report(self) -> dict[str, Any]:
        return {"owner": self.owner, "created": self.created, "quantities": self.quantities,
                "transfers": self.transfers, "errors": self.errors,
                "transient": self.transient, "done": self.done}
