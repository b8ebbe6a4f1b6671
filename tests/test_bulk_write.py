"""djongo.models.BulkWrite: the ORM's writes of a block sent as bulk writes, on
the embedded engine and on a standalone djongo-server reached through CLIENT."""

import pytest
from django.db import IntegrityError, ProgrammingError, transaction
from djongo.models import BulkWrite

from tests.writeapp.models import Item, Note

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "standalone"])

ITEMS = Item._meta.db_table


def writes(commands, collection=ITEMS):
    return [(name, body) for name, body in commands
            if name in ("insert", "update", "delete") and body.get(name) == collection]


def test_readme_example(server, commands):
    """README: djongo.models, BulkWrite."""
    Item.objects.using(server).create(sku="old", qty=1)
    Item.objects.using(server).create(sku="gone", qty=1)
    commands.clear()
    with BulkWrite(ordered=False, using=server) as bulk:
        for n in range(3):
            item = Item(sku=f"sku-{n}", qty=n)
            item.save(using=server)
            assert item.pk is not None                  # the id is taken at save()
        Item.objects.using(server).filter(sku="old").update(qty=10)
        Item.objects.using(server).filter(sku="gone").delete()
        assert Item.objects.using(server).count() == 2  # reads do not see pending writes
    assert (bulk.result.inserted_count, bulk.result.matched_count,
            bulk.result.deleted_count) == (3, 1, 1)
    assert sorted(Item.objects.using(server).values_list("sku", "qty")) == [
        ("old", 10), ("sku-0", 0), ("sku-1", 1), ("sku-2", 2)]
    # One insert, one update and one delete command for the five writes.
    sent = writes(commands)
    assert [name for name, _ in sent] == ["insert", "update", "delete"]
    assert len(sent[0][1]["documents"]) == 3
    assert all(body["ordered"] is False for _, body in sent)


def test_ordered_stops_at_a_duplicate_key_and_raises_one_integrity_error(server):
    Item.objects.using(server).create(sku="taken")
    bulk = BulkWrite(using=server)
    with pytest.raises(IntegrityError) as raised:
        with bulk:
            Item(sku="a").save(using=server)
            Item(sku="taken").save(using=server)
            Item(sku="b").save(using=server)
    message = str(raised.value)
    assert "1 of 3 operations failed" in message
    assert "operation 1 (insert on writeapp_item)" in message and "sku='taken'" in message
    assert bulk.result.inserted_count == 1
    assert [(e.index, e.kind, e.code) for e in bulk.result.errors] == [(1, "insert", 11000)]
    assert sorted(Item.objects.using(server).values_list("sku", flat=True)) == ["a", "taken"]


def test_unordered_runs_every_operation_and_lists_every_failure(server):
    Item.objects.using(server).create(sku="taken")
    bulk = BulkWrite(ordered=False, using=server)
    with pytest.raises(IntegrityError) as raised:
        with bulk:
            Item(sku="taken").save(using=server)
            Item(sku="a").save(using=server)
            Item(sku="taken").save(using=server)
            Item(sku="b").save(using=server)
    assert "2 of 4 operations failed" in str(raised.value)
    assert [e.index for e in bulk.result.errors] == [0, 2]
    assert bulk.result.inserted_count == 2
    assert sorted(Item.objects.using(server).values_list("sku", flat=True)) == [
        "a", "b", "taken"]


def test_ordered_keeps_the_order_across_collections(server, commands):
    item = Item.objects.using(server).create(sku="x")
    commands.clear()
    with BulkWrite(using=server) as bulk:
        Note(text="first", item=item).save(using=server)
        Item.objects.using(server).filter(pk=item.pk).update(qty=5)
        Note(text="second", item=item).save(using=server)
    order = [(name, body[name]) for name, body in commands
             if name in ("insert", "update")]
    assert order == [("insert", "writeapp_note"), ("update", "writeapp_item"),
                     ("insert", "writeapp_note")]
    assert bulk.result.collections["writeapp_note"]["inserted"] == 2
    assert Note.objects.using(server).count() == 2


def test_save_of_a_stored_instance_is_an_update(server, commands):
    item = Item.objects.using(server).create(sku="s", qty=1)
    loaded = Item.objects.using(server).get(pk=item.pk)
    commands.clear()
    with BulkWrite(using=server) as bulk:
        loaded.qty = 2
        loaded.save(using=server)          # no INSERT after the queued UPDATE
        fresh = Item(sku="t")
        fresh.save(using=server)
        fresh.qty = 7
        fresh.save(using=server)           # saved in this block: an update after its insert
    assert [name for name, _ in writes(commands)] == ["update", "insert", "update"]
    assert not [name for name, _ in commands if name in ("count", "aggregate")]
    assert bulk.result.matched_count == 2
    assert dict(Item.objects.using(server).values_list("sku", "qty")) == {"s": 2, "t": 7}


def test_inside_atomic_the_writes_join_the_transaction(server):
    with pytest.raises(RuntimeError), transaction.atomic(using=server):
        with BulkWrite(using=server):
            Item(sku="in-txn").save(using=server)
        assert Item.objects.using(server).filter(sku="in-txn").exists()
        raise RuntimeError("roll back")
    assert not Item.objects.using(server).filter(sku="in-txn").exists()


def test_a_failure_inside_atomic_rolls_the_transaction_back(server):
    Item.objects.using(server).create(sku="taken")
    with pytest.raises(IntegrityError), transaction.atomic(using=server):
        Item.objects.using(server).create(sku="before")
        with BulkWrite(using=server, ordered=False):
            Item(sku="a").save(using=server)
            Item(sku="taken").save(using=server)
    assert list(Item.objects.using(server).values_list("sku", flat=True)) == ["taken"]


def test_an_exception_in_the_block_sends_nothing(server):
    bulk = BulkWrite(using=server)
    with pytest.raises(KeyError), bulk:
        Item(sku="never").save(using=server)
        raise KeyError("stop")
    assert bulk.result is None
    assert not Item.objects.using(server).exists()


def test_models_limits_what_is_collected(server):
    item = Item.objects.using(server).create(sku="m")
    with BulkWrite(using=server, models=[Item]) as bulk:
        Note(text="now", item=item).save(using=server)       # not covered: runs now
        assert Note.objects.using(server).count() == 1
        Item(sku="later").save(using=server)
        assert Item.objects.using(server).count() == 1
    assert bulk.result.queued == 1
    assert Item.objects.using(server).count() == 2


def test_bulk_writes_do_not_nest():
    with BulkWrite(), pytest.raises(ProgrammingError), BulkWrite():
        pass


def test_a_validators_refusal_is_an_integrity_error_naming_the_field(server):
    from tests.validationapp.models import Article

    bulk = BulkWrite(using=server, ordered=False)
    with pytest.raises(IntegrityError) as raised, bulk:
        Article(title="fine").save(using=server)
        Article(title="x" * 31).save(using=server)
    assert "operation 1 (insert on validationapp_article)" in str(raised.value)
    assert "field 'title': maxLength 30" in str(raised.value)
    assert [e.code for e in bulk.result.errors] == [121]
    assert list(Article.objects.using(server).values_list("title", flat=True)) == ["fine"]


def test_the_models_write_concern_goes_with_its_bulk_write(server, commands):
    from tests.writeapp.models import Ledger

    with BulkWrite(using=server):
        Ledger(amount=1).save(using=server)
        Ledger(amount=2).save(using=server)
    [insert] = writes(commands, Ledger._meta.db_table)
    assert insert[1]["writeConcern"] == {"w": "majority", "wtimeout": 5000}
    assert len(insert[1]["documents"]) == 2


def test_bulk_create_and_correlated_writes_are_queued_too(server, commands):
    from django.db.models import OuterRef, Subquery

    items = Item.objects.using(server).bulk_create([Item(sku=f"b{n}") for n in range(3)])
    commands.clear()
    with BulkWrite(using=server) as bulk:
        Note.objects.using(server).bulk_create(
            [Note(text=f"n{item.sku}", item=item) for item in items])
        # A correlated UPDATE: each item's qty from a subquery.
        Item.objects.using(server).update(qty=Subquery(
            Item.objects.using(server).filter(pk=OuterRef("pk")).values("id")[:1]))
    assert bulk.result.inserted_count == 3 and bulk.result.matched_count == 3
    assert [name for name, _ in writes(commands)] == ["update"]
    assert {i.sku: i.qty for i in Item.objects.using(server).all()} == {
        i.sku: i.pk for i in items}


def test_reserved_ids_never_collide_with_explicit_ones_or_later_inserts(server, commands):
    commands.clear()
    with BulkWrite(using=server):
        first = Item.objects.using(server).create(sku="r1")
        Item(pk=first.pk + 1, sku="explicit").save(using=server, force_insert=True)
        after = Item.objects.using(server).create(sku="r2")
        more = [Item.objects.using(server).create(sku=f"m{n}") for n in range(20)]
    assert after.pk > first.pk + 1
    # Ids come from the counter in blocks, not one update per save().
    counters = [b for n, b in commands if n == "findAndModify"]
    assert len(counters) < 10
    later = Item.objects.using(server).create(sku="later")
    pks = [first.pk, first.pk + 1, after.pk, *(m.pk for m in more), later.pk]
    assert len(set(pks)) == len(pks) == Item.objects.using(server).count()
