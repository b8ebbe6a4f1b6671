"""The load tests' operations, the same whether a web worker or a management
command runs them: create, get, filter, update and an atomic() transfer."""

from __future__ import annotations

from typing import Any

from django.db import OperationalError
from django.db.models import F
from djongo.transaction import retry_on_conflict

from .models import Account, Item, Transfer


def run(name: str, args: dict[str, Any]) -> dict[str, Any]:
    """Runs one operation in this process's Django; raises what Django raises."""
    if name == "create":
        item = Item.objects.create(owner=args["owner"], seq=args["seq"])
        return {"id": item.id}
    if name == "get":
        item = Item.objects.get(pk=args["id"])
        return {"owner": item.owner, "seq": item.seq}
    if name == "filter":
        return {"count": Item.objects.filter(owner=args["owner"], qty__gte=0).count()}
    if name == "update":
        return {"rows": Item.objects.filter(pk=args["id"]).update(qty=args["qty"])}
    if name == "transfer":
        return {"id": _transfer(**args)}
    raise ValueError(f"no such operation: {name}")


@retry_on_conflict(attempts=20)
def _transfer(src: str, dst: str, amount: int, tag: str) -> int:
    """Two transfers touching one account conflict (snapshot isolation, as on
    MongoDB): the loser's block is run again, as an application would."""
    Account.objects.filter(name=src).update(balance=F("balance") - amount)
    Account.objects.filter(name=dst).update(balance=F("balance") + amount)
    return Transfer.objects.create(tag=tag, src=src, dst=dst, amount=amount).id


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, OperationalError)
