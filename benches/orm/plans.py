"""What the engine reads for each ORM benchmark operation, at a given size: the commands
djongo sends for the operation (from its command log) are run again through ``explain``
(executionStats) and their plan and counts printed — index keys and documents examined, and
for a ``$lookup`` the documents it read from the joined collection. An operation an index
bounds must read as much at 500,000 entries as at 5,000.

    python benches/orm/plans.py --rows 5000 --rows 500000 [--ops get_pk,range_sort] \
        [--loaded DIR]

Each size is loaded as bench.py loads it (Django's bulk_create), in a temporary directory
removed afterwards, or copied from the store bench.py's ``--loaded DIR`` kept. Internal:
``plans.py worker DIR ROWS OPS`` runs in its own process.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OPS = "get_pk,filter_indexed,range_sort,select_related,update,delete"
COUNTS = ("nReturned", "totalKeysExamined", "totalDocsExamined", "keysExamined",
          "docsExamined", "collectionScans")


def captured_commands(call) -> list[dict]:
    """The find/aggregate/update/delete commands ``call`` sends, as command documents,
    without those on ``__schema__``."""
    from djongo.debug import capture_commands

    with capture_commands() as sent:
        call()
    return [command for name, command in sent
            if name in ("find", "aggregate", "update", "delete")
            and command.get(name) != "__schema__"]


def summary(explained: dict) -> dict:
    """The stages of each plan and the counts of ``COUNTS`` found anywhere in ``explained``."""
    out: dict = {"stages": [], "counts": {}}

    def walk(node, path: str) -> None:
        if isinstance(node, dict):
            if "stage" in node:
                label = node["stage"]
                if "indexName" in node:
                    backward = ", backward" if node.get("direction") == "backward" else ""
                    label += f"({node['indexName']}{backward})"
                if "executionStages" not in path and "winningPlan" in path:
                    out["stages"].append(label)
            for key, value in node.items():
                if key in COUNTS and isinstance(value, int) and "executionStages" not in path:
                    out["counts"][f"{path}.{key}".lstrip(".")] = value
                # How a `$lookup` read its collection, and ran the `$group` after it.
                if key in ("indexesUsed", "strategy", "groupedJoin"):
                    out["counts"][f"{path}.{key}".lstrip(".")] = value
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    walk(explained, "")
    return out


def worker(data_dir: str, rows: int, ops: list[str]) -> None:
    sys.path.insert(0, str(HERE))
    from bench import orm_operations, setup_django

    setup_django("djongo", data_dir)
    from django.db import connection

    operations = orm_operations(rows, random.Random(18))
    result = {}
    for name in ops:
        fn, setup = operations[name]
        if setup:
            setup()
        commands = captured_commands(fn)
        if setup:
            setup()  # the rows the operation wrote away, for explain to find again
        result[name] = [
            {"command": next(iter(c)),
             **summary(connection.mongo_database.command("explain", c,
                                                         verbosity="executionStats"))}
            for c in commands
        ]
    print(json.dumps(result))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker(sys.argv[2], int(sys.argv[3]), sys.argv[4].split(","))
        return
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, action="append", required=True)
    p.add_argument("--ops", default=DEFAULT_OPS)
    p.add_argument("--loaded", type=Path, help="the directory of bench.py --loaded")
    args = p.parse_args()
    sys.path.insert(0, str(HERE))
    from bench import copy_data, run_worker, wait_until_unserved

    for rows in args.rows:
        with tempfile.TemporaryDirectory(prefix="djongo-orm-plans-") as tmp:
            kept = sorted((args.loaded or Path(tmp)).glob(f"load-djongo-*-{rows}/loaded.json"))
            if kept:
                copy_data(kept[0].parent, Path(tmp) / "store")
            else:
                (Path(tmp) / "store").mkdir()
                run_worker(sys.executable, ["load", "--backend", "djongo", "--dir",
                                            f"{tmp}/store", "--rows", str(rows)],
                           timeout=24 * 3600)
            tmp = f"{tmp}/store"
            done = subprocess.run([sys.executable, __file__, "worker", tmp, str(rows), args.ops],
                                  capture_output=True, text=True, check=True)
            plans = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"\n## {rows:,} entries\n")
            for name, commands in plans.items():
                for c in commands:
                    counts = ", ".join(f"{k}={v}" for k, v in c["counts"].items())
                    print(f"- {name} ({c['command']}): {' → '.join(c['stages'])}; {counts}")
            sys.stdout.flush()
            wait_until_unserved(Path(tmp))


if __name__ == "__main__":
    main()
