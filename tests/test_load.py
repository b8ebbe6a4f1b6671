"""Many processes on one store under load: 4 gunicorn workers and 2 management
commands run create/get/filter/update and atomic() transfers at the same time.

Afterwards every acknowledged write is there (the last acknowledged quantity of
each item, every acknowledged transfer), no id was handed out twice, and the
atomic() blocks were all or nothing (the money adds up).

With a ``kill -9`` of the store's server in the middle, the processes carry on:
a new server takes over, pymongo retries the operation the kill interrupted, and
what cannot be retried by the driver (a multi-document update, a transaction
that had not committed) fails with an OperationalError the client repeats. How
long each client waited is printed (``-s``); the default run kills once,
``DJONGO_TAKEOVER_KILLS=N`` kills N times in a longer run.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.loadapp import clients
from tests.multiproc import ROOT, django_env, server_pid, store_client, wait_until_gone
from tests.test_admin_browser import _free_port

WEB_CLIENTS = 4
COMMANDS = 2
SETTINGS = "tests.loadapp.settings"


def _env(data: Path) -> dict[str, str]:
    return {**django_env(data), "DJANGO_SETTINGS_MODULE": SETTINGS}


def _seed(data: Path) -> None:
    seed = subprocess.run(
        [sys.executable, "-c", "import django; django.setup();"
         # The tables' unique indexes (Transfer.tag: a transfer repeated after
         # an error although it had committed would collide).
         "from django.core.management import call_command;"
         "call_command('migrate', run_syncdb=True, verbosity=0);"
         "from tests.loadapp.models import Account;"
         f"[Account.objects.create(name=n, balance={clients.OPENING_BALANCE})"
         f" for n in {clients.ACCOUNTS!r}]"],
        cwd=ROOT, env=_env(data), capture_output=True, text=True, timeout=120)
    assert seed.returncode == 0, seed.stderr


class Gunicorn:
    def __init__(self, data: Path, log: Path):
        self.port = _free_port()
        self.log = open(log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", str(WEB_CLIENTS),
             "--bind", f"127.0.0.1:{self.port}", "--timeout", "300",
             "tests.loadapp.wsgi:application"],
            cwd=ROOT, env=_env(data), stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while True:
            try:
                self.call(http.client.HTTPConnection("127.0.0.1", self.port, timeout=60),
                          "filter", {"owner": "nobody"})
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not come up:\n{log.read_text()}") from None
                time.sleep(0.2)

    @staticmethod
    def call(conn: http.client.HTTPConnection, name: str, args: dict) -> tuple[int, dict]:
        conn.request("POST", f"/op/{name}", body=json.dumps(args),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _web_client(gunicorn: Gunicorn, client: clients.Client, count: int, retries: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", gunicorn.port, timeout=120)
    for name, args in client.plan(count):
        for attempt in range(retries + 1):
            status, result = gunicorn.call(conn, name, args)
            if status == 200:
                client.acknowledged(name, args, result)
                break
            if status == 503 and attempt < retries:
                client.transient.append(time.time())
                continue
            client.errors.append(f"{name} {args}: HTTP {status} {result}")
            break


def _run_load(data: Path, tmp: Path, count: int, retries: int, during=None) -> list[dict]:
    """Runs the load to the end (calling ``during(web_clients, commands)`` meanwhile)
    and returns every client's report."""
    gunicorn = Gunicorn(data, tmp / "gunicorn.log")
    try:
        commands = [
            subprocess.Popen(
                [sys.executable, "-m", "django", "load_traffic", f"cmd{n}", str(100 + n),
                 str(count * 2), str(tmp / f"cmd{n}.json"), "--retries", str(retries)],
                cwd=ROOT, env=_env(data), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True)
            for n in range(COMMANDS)
        ]
        web = [clients.Client(f"web{n}", n) for n in range(WEB_CLIENTS)]
        threads = [threading.Thread(target=_web_client, args=(gunicorn, c, count, retries))
                   for c in web]
        for t in threads:
            t.start()
        if during is not None:
            during(web, commands)
        for t in threads:
            t.join(600)
        outputs = [c.communicate(timeout=600) for c in commands]
        for proc, (_, err) in zip(commands, outputs, strict=True):
            assert proc.returncode == 0, err
    finally:
        gunicorn.stop()
    reports = [c.report() for c in web]
    for n in range(COMMANDS):
        report = json.loads((tmp / f"cmd{n}.json").read_text())
        report["created"] = {int(k): v for k, v in report["created"].items()}
        report["quantities"] = {int(k): v for k, v in report["quantities"].items()}
        reports.append(report)
    return reports


def _verify(data: Path, reports: list[dict]) -> None:
    with store_client(data) as client:
        db = client.blog
        items = list(db.loadapp_item.find())
        accounts = {a["name"]: a["balance"] for a in db.loadapp_account.find()}
        transfers = list(db.loadapp_transfer.find())
        indexes = db.loadapp_transfer.index_information()
    ids = [i["id"] for i in items]
    assert len(ids) == len(set(ids)), "two items share an id"
    by_id = {i["id"]: i for i in items}
    acked_ids = [i for r in reports for i in r["created"]]
    assert len(acked_ids) == len(set(acked_ids)), "an id was acknowledged to two clients"
    for report in reports:
        for item_id, seq in report["created"].items():
            assert item_id in by_id, f"acknowledged item {item_id} of {report['owner']} lost"
            assert (by_id[item_id]["owner"], by_id[item_id]["seq"]) == (report["owner"], seq)
        for item_id, qty in report["quantities"].items():
            assert by_id[item_id]["qty"] == qty, f"acknowledged update of {item_id} lost"
    tags = [t["tag"] for t in transfers]
    assert len(tags) == len(set(tags))
    assert any(ix.get("unique") for ix in indexes.values()), "Transfer.tag is not unique"
    for report in reports:
        missing = set(report["transfers"]) - set(tags)
        assert not missing, f"acknowledged transfers lost: {sorted(missing)[:5]}"
    # atomic(): a transfer is there with both its balance changes, or not at all.
    expected = {name: clients.OPENING_BALANCE for name in clients.ACCOUNTS}
    for t in transfers:
        expected[t["src"]] -= t["amount"]
        expected[t["dst"]] += t["amount"]
    assert accounts == expected


def test_six_processes_mixed_load(tmp_path):
    data = tmp_path / "data"
    _seed(data)
    reports = _run_load(data, tmp_path, count=50, retries=0)
    errors = [e for r in reports for e in r["errors"]]
    assert errors == [], errors[:10]
    assert all(r["transient"] == [] for r in reports)
    assert sum(len(r["done"]) for r in reports) == 50 * WEB_CLIENTS + 100 * COMMANDS
    assert all(r["transfers"] and r["quantities"] for r in reports)
    _verify(data, reports)


def test_kill_9_of_the_store_server_mid_load(tmp_path):
    kills = int(os.environ.get("DJONGO_TAKEOVER_KILLS", "1"))
    data = tmp_path / "data"
    _seed(data)
    killed_at: list[float] = []

    def kill_server(web: list[clients.Client], commands: list[subprocess.Popen]) -> None:
        for _ in range(kills):
            # Every web client has made progress since the last kill.
            marks = [len(c.done) + 8 for c in web]
            while any(len(c.done) < m for c, m in zip(web, marks, strict=True)):
                assert all(c.poll() is None for c in commands), "a command ended early"
                time.sleep(0.05)
            pid = server_pid(data)
            os.kill(pid, signal.SIGKILL)
            killed_at.append(time.time())
            wait_until_gone(pid)

    count = 40 + 30 * kills
    reports = _run_load(data, tmp_path, count=count, retries=3, during=kill_server)
    errors = [e for r in reports for e in r["errors"]]
    assert errors == [], errors[:10]
    _verify(data, reports)
    # Everyone carried on after each kill; at most the operation in flight
    # failed (and was repeated) per client and kill.
    waits = []
    for report in reports:
        assert len(report["transient"]) <= kills, report["transient"]
        for at in killed_at:
            after = [t for t in report["done"] if t > at]
            assert after, f"{report['owner']} did nothing after the kill at {at}"
            waits.append(after[0] - at)
    waits.sort()
    print(f"\n{kills} kill(s) of the store's server: first acknowledged operation of each "
          f"of {len(reports)} clients after a kill within {waits[-1]:.2f} s "
          f"(median {waits[len(waits) // 2]:.2f} s); operations repeated after an error: "
          f"{sum(len(r['transient']) for r in reports)}")
