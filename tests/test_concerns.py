"""Read concern, write concern and read preference per model
(djongo.models.Concerns) and per queryset (with_options), as the server
receives them: on the embedded engine and on a standalone djongo-server
reached through CLIENT."""

import pytest
from django.db import DatabaseError, transaction
from djongo import models

from tests.writeapp.models import Audited, Item, Ledger, Note

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "standalone"])


def sent(commands, name, collection):
    return [body for n, body in commands if n == name and body.get(name) == collection]


def test_readme_example(server, commands):
    """README: djongo.models, Concerns."""
    entry = Ledger.objects.using(server).create(amount=5)
    list(Ledger.objects.using(server).filter(amount__gt=1))
    Ledger.objects.using(server).with_options(write_concern={"w": 1, "j": True}).filter(
        pk=entry.pk).update(amount=6)

    table = Ledger._meta.db_table
    [insert] = sent(commands, "insert", table)
    assert insert["writeConcern"] == {"w": "majority", "wtimeout": 5000}
    [find] = sent(commands, "find", table)
    assert find["readConcern"] == {"level": "majority"}
    if server == "default":
        # The store's client sends the model's preference as given; pymongo
        # uses it to pick the server (a replica set's member), as for MongoDB.
        assert find["$readPreference"] == {"mode": "primaryPreferred"}
    [update] = sent(commands, "update", table)
    assert update["writeConcern"] == {"w": 1, "j": True}


def test_subclasses_inherit_and_querysets_override(server, commands):
    Audited.objects.using(server).create(reason="r")
    Audited.objects.using(server).with_options(read_concern="local").count()
    Audited.objects.using(server).with_options(read_concern="local").get()
    [insert] = sent(commands, "insert", Audited._meta.db_table)
    assert insert["writeConcern"] == {"w": "majority", "wtimeout": 5000}
    reads = [b for n, b in commands if n in ("aggregate", "find")
             and b.get(n) == Audited._meta.db_table]
    assert reads and all(b["readConcern"] == {"level": "local"} for b in reads)


def test_models_without_concerns_send_none(server, commands):
    Item.objects.using(server).create(sku="plain")
    list(Item.objects.using(server).all())
    bodies = [b for n, b in commands if b.get(n) == Item._meta.db_table]
    assert bodies and not any("writeConcern" in b or "readConcern" in b for b in bodies)


def test_inside_a_transaction_the_transactions_concerns_apply(server, commands):
    with transaction.atomic(using=server):
        Ledger.objects.using(server).create(amount=1)
        list(Ledger.objects.using(server).all())
    bodies = [b for n, b in commands if b.get(n) == Ledger._meta.db_table]
    assert bodies and not any("writeConcern" in b or "readConcern" in b for b in bodies)


def test_a_value_mongodb_refuses_is_refused_by_the_server():
    """The embedded engine checks the values as mongod does: its codes reach the user."""
    Ledger.objects.create(amount=1)
    qs = Ledger.objects.with_options(write_concern={"w": 51})
    with pytest.raises(DatabaseError) as refused:
        qs.update(amount=2)
    assert refused.value.__cause__.code == 9      # FailedToParse
    assert "not greater than 50" in str(refused.value)
    with pytest.raises(DatabaseError) as refused:
        list(Ledger.objects.with_options(read_concern="eventual"))
    assert refused.value.__cause__.code == 9
    with pytest.raises(DatabaseError) as refused:
        list(Ledger.objects.with_options(read_preference={"mode": "primary",
                                                          "maxStalenessSeconds": 120}))
    assert refused.value.__cause__.code == 2      # BadValue
    with pytest.raises(DatabaseError) as refused:
        list(Ledger.objects.with_options(read_preference="secondaryOnly"))
    assert refused.value.__cause__.code == 2
    assert "Could not parse $readPreference mode 'secondaryOnly'" in str(refused.value)


def test_the_engine_accepts_what_mongodb_accepts(commands):
    for options in ({"read_concern": "snapshot"}, {"read_concern": "available"},
                    {"read_concern": "linearizable"},
                    {"read_preference": {"mode": "secondaryPreferred", "tags": [{"dc": "a"}, {}],
                                         "maxStalenessSeconds": 90}},
                    {"read_preference": "nearest"}):
        assert list(Ledger.objects.with_options(**options)) == []
    Ledger.objects.create(amount=1)
    Ledger.objects.with_options(write_concern={"w": 0}).update(amount=2)
    Ledger.objects.with_options(write_concern={"w": "majority", "j": True,
                                               "wtimeout": 100}).filter(amount=2).update(amount=3)
    assert list(Ledger.objects.values_list("amount", flat=True)) == [3]
    updates = [b for n, b in commands if n == "update"]
    assert updates[-1]["writeConcern"] == {"w": "majority", "j": True, "wtimeout": 100}


def test_declared_values_must_be_documents():
    with pytest.raises(TypeError):
        models.Concerns(write_concern=1)
    with pytest.raises(TypeError):
        Ledger.objects.with_options(read_preference=["primary"])


def test_mongo_methods_and_raw_aggregate_use_the_models_concerns(server, commands):
    manager = Ledger.objects.db_manager(server)
    manager.mongo_insert_one({"id": 1, "amount": 3})
    assert [e.amount for e in manager.raw_aggregate([])] == [3]
    table = Ledger._meta.db_table
    [insert] = sent(commands, "insert", table)
    assert insert["writeConcern"] == {"w": "majority", "wtimeout": 5000}
    [aggregate] = sent(commands, "aggregate", table)
    assert aggregate["readConcern"] == {"level": "majority"}


def test_with_options_reaches_writes_django_builds_itself(server, commands):
    """create(), bulk_create(), get_or_create(), update_or_create() and a
    delete() with cascades run queries Django builds anew: the queryset's
    values go with them, for its own model's rows only. Those Django runs in
    an atomic block of its own send the write concern with the commit."""
    mine = {"w": 1, "j": True}
    ledgers = Ledger.objects.using(server).with_options(write_concern=mine)
    table = Ledger._meta.db_table

    ledgers.create(amount=1)
    [insert] = sent(commands, "insert", table)
    assert insert["writeConcern"] == mine

    for write in (lambda: ledgers.bulk_create([Ledger(amount=2), Ledger(amount=3)]),
                  lambda: ledgers.get_or_create(amount=4),
                  lambda: ledgers.update_or_create(amount=4, defaults={"amount": 5})):
        commands.clear()
        write()
        statements = [b for n, b in commands if b.get(n) == table]
        assert statements and not any("writeConcern" in b for b in statements)
        [commit] = [b for n, b in commands if n == "commitTransaction"]
        assert commit["writeConcern"] == mine
    assert sorted(Ledger.objects.using(server).values_list("amount", flat=True)) == [1, 2, 3, 5]

    # Outside with_options(), the model's own concerns again.
    commands.clear()
    Ledger.objects.using(server).create(amount=6)
    [insert] = sent(commands, "insert", table)
    assert insert["writeConcern"] == {"w": "majority", "wtimeout": 5000}

    # A user's own atomic block keeps its own concerns.
    commands.clear()
    with transaction.atomic(using=server):
        ledgers.bulk_create([Ledger(amount=7)])
    [commit] = [b for n, b in commands if n == "commitTransaction"]
    assert "writeConcern" not in commit

    item = Item.objects.using(server).create(sku="cascade")
    Note.objects.using(server).create(text="n", item=item)
    commands.clear()
    Item.objects.using(server).with_options(write_concern=mine).filter(pk=item.pk).delete()
    [commit] = [b for n, b in commands if n == "commitTransaction"]
    assert commit["writeConcern"] == mine
    assert not Item.objects.using(server).exists()
    assert Note.objects.using(server).get().item_id is None
