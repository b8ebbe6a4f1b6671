"""``BulkWrite`` against the same ORM writes made one by one, same run, on the
embedded engine (the models of tests/writeapp).

Per round and in alternating order: N ``create()`` calls, then N ``save()``
calls of loaded instances (updates), each once plainly and once inside
``with BulkWrite(ordered=False)``. The report gives the median seconds per
operation kind and the ratio bulk / plain (below 1: the bulk is faster).

    DJANGO_SETTINGS_MODULE=tests.settings python benches/bulk_write/bench.py \\
        --rows 500 --rounds 5 --out benches/bulk_write/results.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from djongo.models import BulkWrite

    from tests.writeapp.models import Item

    call_command("migrate", run_syncdb=True, verbosity=0)
    times: dict[str, list[float]] = {k: [] for k in (
        "create, plain", "create, BulkWrite", "save (update), plain", "save (update), BulkWrite")}

    def timed(key, work):
        start = time.perf_counter()
        work()
        times[key].append(time.perf_counter() - start)

    for round_ in range(args.rounds):
        Item.objects.all().delete()
        order = ("plain", "BulkWrite") if round_ % 2 == 0 else ("BulkWrite", "plain")
        for how in order:
            def create(how=how):
                for n in range(args.rows):
                    Item.objects.create(sku=f"{how}-{n}")
            if how == "plain":
                timed("create, plain", create)
            else:
                def bulk_create(create=create):
                    with BulkWrite(ordered=False):
                        create()
                timed("create, BulkWrite", bulk_create)
        for how in order:
            items = list(Item.objects.filter(sku__startswith=how))

            def update(items=items):
                for item in items:
                    item.qty += 1
                    item.save()
            if how == "plain":
                timed("save (update), plain", update)
            else:
                # The block's end (sending the bulk writes) is inside the timing.
                def bulk_update(update=update):
                    with BulkWrite(ordered=False):
                        update()
                timed("save (update), BulkWrite", bulk_update)
    Item.objects.all().delete()

    lines = [
        "# BulkWrite against one-by-one ORM writes (embedded engine)", "",
        f"`DJANGO_SETTINGS_MODULE=tests.settings python benches/bulk_write/bench.py "
        f"--rows {args.rows} --rounds {args.rounds}`; {platform.machine()}, Python "
        f"{platform.python_version()}, a shared 2-core machine (other jobs running: compare "
        "the ratios, not the seconds). Median of the rounds, seconds for "
        f"{args.rows} operations. The create() rows under BulkWrite include taking ids; "
        "the save() rows include sending the bulk writes at the block's end.", "",
        "| operation | plain (s) | BulkWrite (s) | BulkWrite / plain |",
        "| --- | ---: | ---: | ---: |",
    ]
    for kind in ("create", "save (update)"):
        plain = statistics.median(times[f"{kind}, plain"])
        bulk = statistics.median(times[f"{kind}, BulkWrite"])
        lines.append(f"| {kind} | {plain:.3f} | {bulk:.3f} | {bulk / plain:.2f} |")
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report)


if __name__ == "__main__":
    main()
