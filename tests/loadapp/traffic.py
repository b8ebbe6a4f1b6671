"""The load tests' operations, the same whether a web worker or a management
command runs them: create, get, filter, update and an atomic() transfer."""

from __future__ import annotations

from typing import Any

from django.db import OperationalError, transaction
from django.db.models import F

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
        with transaction.atomic():
            Account.objects.filter(name=args["src"]).update(balance=F("balance") - args["amount"])
            Account.objects.filter(name=args["dst"]).update(balance=F("balance") + args["amount"])
            made = Transfer.objects.create(tag=args["tag"], src=args["src"], dst=args["dst"],
                                           amount=args["amount"])
        return {"id": made.id}
    raise ValueError(f"no such operation: {name}")


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, OperationalError)
