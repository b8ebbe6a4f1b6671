"""The list-append history checker (tests/history.py) finds the anomalies it
claims to find, and nothing in a history snapshot isolation allows."""

from __future__ import annotations

from tests.history import Op, Txn, check


def r(key: int, *values: int) -> Op:
    return Op("r", key, list(values))


def a(key: int, value: int) -> Op:
    return Op("a", key, value)


def kinds(history: list[Txn], final: dict[int, list[int]]) -> set[str]:
    return {anomaly.kind for anomaly in check(history, final)}


def test_a_serial_history_is_clean():
    history = [
        Txn(1, [r(1), a(1, 10)], "ok"),
        Txn(2, [r(1, 10), a(1, 20), r(1, 10, 20), a(2, 21)], "ok"),
        Txn(3, [r(1, 10, 20), r(2, 21)], "ok"),
        Txn(4, [a(2, 40)], "fail"),
        Txn(5, [a(2, 50)], "info"),
    ]
    assert kinds(history, {1: [10, 20], 2: [21, 50]}) == set()


def test_write_skew_is_allowed():
    # Both read both keys empty and append to different keys: two rw edges.
    history = [
        Txn(1, [r(1), r(2), a(1, 10)], "ok"),
        Txn(2, [r(1), r(2), a(2, 20)], "ok"),
    ]
    assert kinds(history, {1: [10], 2: [20]}) == set()


def test_lost_update():
    # Both read key 1 empty and both append: the second did not see the first.
    history = [
        Txn(1, [r(1), a(1, 10)], "ok"),
        Txn(2, [r(1), a(1, 20)], "ok"),
    ]
    assert kinds(history, {1: [10, 20]}) == {"G-single"}


def test_fractured_read():
    # Txn 1 appends to both keys; txn 2 sees its append on key 2 only.
    history = [
        Txn(1, [a(1, 10), a(2, 20)], "ok"),
        Txn(2, [r(1), r(2, 20)], "ok"),
    ]
    assert kinds(history, {1: [10], 2: [20]}) == {"G-single"}


def test_dirty_reads():
    aborted = [Txn(1, [a(1, 10)], "fail"), Txn(2, [r(1, 10)], "ok")]
    assert "G1a" in kinds(aborted, {1: []})
    intermediate = [Txn(1, [a(1, 10), a(1, 11)], "ok"), Txn(2, [r(1, 10)], "ok")]
    assert "G1b" in kinds(intermediate, {1: [10, 11]})


def test_lost_and_duplicated_writes():
    assert kinds([Txn(1, [a(1, 10)], "ok")], {1: []}) == {"lost-write"}
    assert "duplicate" in kinds([Txn(1, [a(1, 10)], "ok")], {1: [10, 10]})
    assert kinds([Txn(1, [a(1, 10), a(2, 20)], "info")], {1: [10], 2: []}) == {"partial"}


def test_reads_that_are_not_a_snapshot():
    not_own = [Txn(1, [a(1, 10), r(1)], "ok")]
    assert kinds(not_own, {1: [10]}) == {"internal"}
    unrepeatable = [Txn(1, [r(1), r(1, 20)], "ok"), Txn(2, [a(1, 20)], "ok")]
    assert "internal" in kinds(unrepeatable, {1: [20]})
    out_of_order = [Txn(1, [r(1, 20)], "ok"), Txn(2, [a(1, 10)], "ok"), Txn(3, [a(1, 20)], "ok")]
    assert kinds(out_of_order, {1: [10, 20]}) == {"incompatible-order"}


def test_a_write_cycle():
    # Key 1 orders 1 before 2, key 2 orders 2 before 1.
    history = [Txn(1, [a(1, 10), a(2, 21)], "ok"), Txn(2, [a(1, 11), a(2, 20)], "ok")]
    assert kinds(history, {1: [10, 11], 2: [20, 21]}) == {"G1c"}
