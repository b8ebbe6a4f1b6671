"""Concurrent list-append transactions against the standalone server, checked
for the anomalies snapshot isolation forbids (tests/history.py): lost
updates, dirty and intermediate reads, fractured reads, lost or duplicated
acknowledged writes. Once with the server running throughout, once killed
with ``kill -9`` in the middle and restarted before the final read.
"""

from __future__ import annotations

import itertools
import random
import threading

import pymongo
import pytest
from pymongo.errors import OperationFailure, PyMongoError

from tests.engine_server import Server
from tests.history import Op, Txn, check

KEYS = 6
THREADS = 5
TXNS_PER_THREAD = 120
COMMITTED_BEFORE_KILL = 150


class Workload:
    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.history: list[Txn] = []
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.values = itertools.count(1)
        self.stop = threading.Event()
        self.committed = 0
        self.enough = threading.Event()

    def record(self, txn: Txn, enough_at: int) -> None:
        with self.lock:
            self.history.append(txn)
            if txn.outcome == "ok":
                self.committed += 1
                if self.committed >= enough_at:
                    self.enough.set()

    def ops(self, rng: random.Random) -> list[Op]:
        ops = []
        for _ in range(rng.randint(1, 4)):
            key = rng.randrange(KEYS)
            ops.append(Op("a", key, next(self.values)) if rng.random() < 0.5 else Op("r", key))
        return ops

    def transaction(self, client: pymongo.MongoClient, rng: random.Random) -> Txn:
        lists = client.hist.lists
        txn = Txn(next(self.ids))
        with client.start_session() as session:
            session.start_transaction()
            try:
                for op in self.ops(rng):
                    if op.kind == "r":
                        doc = lists.find_one({"_id": op.key}, session=session)
                        op.value = list(doc["v"])
                    else:
                        lists.update_one({"_id": op.key}, {"$push": {"v": op.value}},
                                         session=session)
                    txn.ops.append(op)
            except PyMongoError:
                # Write conflicts, or the server going away: never committed.
                session.abort_transaction()
                txn.outcome = "fail"
                return txn
            try:
                session.commit_transaction()
                txn.outcome = "ok"
            except OperationFailure as exc:
                transient = exc.has_error_label("TransientTransactionError")
                txn.outcome = "fail" if transient else "info"
            except PyMongoError:
                txn.outcome = "info"
        return txn

    def single(self, client: pymongo.MongoClient, rng: random.Random) -> Txn:
        """A write or a read outside any transaction, as a one-statement
        transaction: an append, or all lists read by one find."""
        lists = client.hist.lists
        txn = Txn(next(self.ids))
        try:
            if rng.random() < 0.5:
                op = Op("a", rng.randrange(KEYS), next(self.values))
                txn.ops.append(op)
                lists.update_one({"_id": op.key}, {"$push": {"v": op.value}})
            else:
                docs = list(lists.find({}))
                txn.ops = [Op("r", d["_id"], list(d["v"])) for d in docs]
            txn.outcome = "ok"
        except OperationFailure:
            txn.outcome = "fail"
        except PyMongoError:
            txn.outcome = "info"
        return txn

    def worker(self, seed: int, count: int, enough_at: int) -> None:
        rng = random.Random(seed)
        client = pymongo.MongoClient(self.uri, retryWrites=False, retryReads=False,
                                     serverSelectionTimeoutMS=500)
        try:
            for _ in range(count):
                if self.stop.is_set():
                    return
                if rng.random() < 0.2:
                    txn = self.single(client, rng)
                else:
                    txn = self.transaction(client, rng)
                self.record(txn, enough_at)
        finally:
            client.close()

    def start(self, count: int, enough_at: int) -> list[threading.Thread]:
        threads = [threading.Thread(target=self.worker, args=(seed, count, enough_at))
                   for seed in range(THREADS)]
        for t in threads:
            t.start()
        return threads


def prepare(server: Server) -> None:
    client = server.client()
    client.hist.lists.insert_many([{"_id": k, "v": []} for k in range(KEYS)])
    client.close()


def final_lists(server: Server) -> dict[int, list[int]]:
    client = server.client()
    lists = {d["_id"]: list(d["v"]) for d in client.hist.lists.find({})}
    client.close()
    return lists


def assert_no_anomaly(workload: Workload, final: dict[int, list[int]]) -> None:
    outcomes = [t.outcome for t in workload.history]
    assert outcomes.count("ok") > 100, "too few transactions committed to show anything"
    # Contention is high on purpose: some transactions must have lost a conflict.
    assert outcomes.count("fail") > 0
    anomalies = check(workload.history, final)
    assert not anomalies, "\n".join(f"{a.kind}: {a.detail}" for a in anomalies[:20])


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path / "data").start()
    yield s
    s.stop()


def test_concurrent_list_appends_show_no_snapshot_isolation_anomaly(server):
    prepare(server)
    workload = Workload(server.uri)
    for t in workload.start(TXNS_PER_THREAD, enough_at=0):
        t.join(300)
    assert_no_anomaly(workload, final_lists(server))


def test_list_appends_killed_mid_way_show_no_anomaly_after_restart(server):
    prepare(server)
    workload = Workload(server.uri)
    threads = workload.start(10**6, enough_at=COMMITTED_BEFORE_KILL)
    try:
        assert workload.enough.wait(300), "the workload never got going"
        server.kill9()
    finally:
        workload.stop.set()
        for t in threads:
            t.join(120)
    assert not any(t.is_alive() for t in threads)
    server.start()
    assert_no_anomaly(workload, final_lists(server))
