"""Numbers are keys by value: an index or ``_id`` treats ``1``, ``1.0``,
``NumberLong(1)`` and ``NumberDecimal("1.00")`` as one key, as MongoDB does,
so indexed queries find every numeric type and unique indexes refuse them as
duplicates.
"""

from __future__ import annotations

import pytest
from bson import Decimal128, Int64
from pymongo.errors import DuplicateKeyError

from tests.engine_server import Server


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("keys") / "data").start()
    client = s.client()
    yield client.keys
    client.close()
    s.stop()


def test_an_indexed_equality_finds_every_numeric_type(db):
    db.prices.insert_many(
        [
            {"_id": 1, "p": Decimal128("5")},
            {"_id": 2, "p": 5},
            {"_id": 3, "p": Int64(5)},
            {"_id": 4, "p": 5.0},
            {"_id": 5, "p": Decimal128("5.01")},
            {"_id": 6, "p": Decimal128("0.10")},
        ]
    )
    probes = [5, Decimal128("5.0"), 5.01, Decimal128("5.010"), Decimal128("0.1")]

    def answers():
        return [sorted(d["_id"] for d in db.prices.find({"p": v})) for v in probes]

    unindexed = answers()
    db.prices.create_index("p")
    indexed = answers()
    assert indexed == unindexed
    assert indexed[0] == [1, 2, 3, 4] and indexed[1] == [1, 2, 3, 4]
    assert indexed[3] == [5] and indexed[4] == [6]
    assert indexed[2] == [], "the double 5.01 is not the decimal 5.01"


def test_unique_indexes_and_ids_compare_by_value(db):
    db.codes.create_index("c", unique=True)
    db.codes.insert_one({"c": Decimal128("1.0")})
    for dup in (Decimal128("1.00"), 1, 1.0, Int64(1)):
        with pytest.raises(DuplicateKeyError):
            db.codes.insert_one({"c": dup})
    db.codes.insert_one({"c": Decimal128("1.1")})
    db.ids.insert_one({"_id": Decimal128("7.000")})
    with pytest.raises(DuplicateKeyError):
        db.ids.insert_one({"_id": 7})
    assert db.ids.find_one({"_id": 7.0}) == {"_id": Decimal128("7.000")}
