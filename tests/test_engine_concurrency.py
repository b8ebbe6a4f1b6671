"""Many clients at once against the standalone server: threads and processes
updating one document, allocating ids through ``__schema__`` counters,
transactions that meet another session's transaction, and a client killed
inside a transaction.
"""

from __future__ import annotations

import multiprocessing
import random
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pymongo
import pytest
from djongo import sequences
from pymongo import monitoring

from tests.engine_server import Server

THREADS = 6
PROCESSES = 3
THREADS_PER_PROCESS = 3
ROUNDS = 30


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path / "data").start()
    yield s
    s.stop()


def _work(uri: str, worker: int) -> list[tuple[int, int]]:
    """One client's share: ``$inc`` the shared counter and take ids, storing a
    row under each id. Returns the id blocks it was given."""
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=10000)
    db = client.app
    rng = random.Random(worker)
    blocks = []
    try:
        for _ in range(ROUNDS):
            db.counters.update_one({"_id": "hits"}, {"$inc": {"n": 1}})
            count = rng.randint(1, 3)
            first = sequences.allocate(db, "app_item", count, None)
            # A duplicate id would raise DuplicateKeyError here.
            db.app_item.insert_many([{"_id": i, "by": worker} for i in range(first, first + count)])
            blocks.append((first, count))
    finally:
        client.close()
    return blocks


def _process(uri: str, process: int) -> list[tuple[int, int]]:
    with ThreadPoolExecutor(THREADS_PER_PROCESS) as pool:
        shares = pool.map(_work, [uri] * THREADS_PER_PROCESS,
                          [1000 * (process + 1) + t for t in range(THREADS_PER_PROCESS)])
        return [block for share in shares for block in share]


def test_many_threads_and_processes_lose_no_update_and_share_no_id(server):
    client = server.client()
    db = client.app
    db.counters.insert_one({"_id": "hits", "n": 0})
    sequences.register(db, "app_item", "id", None)

    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as processes, ThreadPoolExecutor(THREADS) as threads:
        remote = processes.starmap_async(_process, [(server.uri, p) for p in range(PROCESSES)])
        local = list(threads.map(_work, [server.uri] * THREADS, range(THREADS)))
        blocks = [b for share in local for b in share]
        blocks += [b for share in remote.get(timeout=300) for b in share]

    workers = THREADS + PROCESSES * THREADS_PER_PROCESS
    assert db.counters.find_one({"_id": "hits"})["n"] == workers * ROUNDS

    ids = [i for first, count in blocks for i in range(first, first + count)]
    assert len(ids) == len(set(ids)), "an id was handed out twice"
    # Blocks tile 1..seq exactly: no id lost between allocations either.
    seq = db["__schema__"].find_one({"name": "app_item"})["auto"]["seq"]
    assert sorted(ids) == list(range(1, seq + 1))
    assert db.app_item.count_documents({}) == len(ids)
    client.close()


class FailedCommands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.failures: list[dict] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self.failures.append(dict(event.failure))


def test_a_transaction_blocked_by_another_gets_a_retryable_write_conflict(tmp_path):
    server = Server(tmp_path / "data").start()
    try:
        listener = FailedCommands()
        first = server.client()
        second = server.client(event_listeners=[listener])
        accounts = first.app.accounts
        accounts.insert_one({"_id": "a", "n": 0})
        holding = threading.Event()
        retried = threading.Event()

        def hold_the_lock() -> None:
            with first.start_session() as s, s.start_transaction():
                accounts.update_one({"_id": "a"}, {"$inc": {"n": 1}}, session=s)
                holding.set()
                # Keep the transaction open until the other one has retried.
                assert retried.wait(60)

        attempts = 0

        def transfer(s: pymongo.client_session.ClientSession) -> None:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                retried.set()
            second.app.accounts.update_one({"_id": "a"}, {"$inc": {"n": 10}}, session=s)

        holder = threading.Thread(target=hold_the_lock)
        holder.start()
        assert holding.wait(30)
        with second.start_session() as s:
            s.with_transaction(transfer)
        holder.join(60)

        assert attempts >= 2
        conflicts = [f for f in listener.failures if f.get("code") == 112]
        assert conflicts, listener.failures
        assert conflicts[0]["codeName"] == "WriteConflict"
        assert "TransientTransactionError" in conflicts[0]["errorLabels"]
        # Both transactions committed, each exactly once.
        assert accounts.find_one({"_id": "a"})["n"] == 11
        first.close()
        second.close()
    finally:
        server.stop()


def test_transactions_from_many_threads_lose_no_update(server):
    client = server.client()
    client.app.balance.insert_one({"_id": 1, "n": 0})
    per_thread = 15

    def read_modify_write(s: pymongo.client_session.ClientSession) -> None:
        doc = client.app.balance.find_one({"_id": 1}, session=s)
        client.app.balance.update_one({"_id": 1}, {"$set": {"n": doc["n"] + 1}}, session=s)

    def worker() -> None:
        with client.start_session() as s:
            for _ in range(per_thread):
                s.with_transaction(read_modify_write)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert client.app.balance.find_one({"_id": 1})["n"] == 4 * per_thread
    client.close()


HOLD_A_TRANSACTION = """
import sys, time, pymongo
client = pymongo.MongoClient(sys.argv[1])
session = client.start_session()
session.start_transaction()
client.app.accounts.update_one({"_id": "a"}, {"$inc": {"n": 1000}}, session=session)
print("holding", flush=True)
time.sleep(600)
"""


def test_a_killed_client_frees_the_documents_of_its_transaction(server):
    """The client dies (SIGKILL) inside a transaction that wrote a document:
    writers of that document go on at once, and none sees LockTimeout."""
    client = server.client()
    accounts = client.app.accounts
    accounts.insert_one({"_id": "a", "n": 0})
    holder = subprocess.Popen([sys.executable, "-c", HOLD_A_TRANSACTION, server.uri],
                              stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"holding\n"
    finally:
        holder.kill()
        holder.wait(30)
    listener = FailedCommands()
    writer_client = server.client(event_listeners=[listener])

    def write() -> None:
        for _ in range(20):
            writer_client.app.accounts.update_one({"_id": "a"}, {"$inc": {"n": 1}})

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert listener.failures == []
    # Every write counted; the dead transaction's never applied.
    assert accounts.find_one({"_id": "a"})["n"] == 80
    writer_client.close()
    client.close()
