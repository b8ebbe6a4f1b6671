"""docs/compatibility.png: the per-app table of docs/compatibility.md as a chart.

It reads the report rather than a run, so the picture always matches the
committed table and can be redrawn without running the suite again:

    python scripts/django_suite/report_plot.py [docs/compatibility.md]

Needs matplotlib (the project's ``bench`` extra).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[2]
# | app | SQLite | djongo | % | run | ...  (the report's table when compared with SQLite)
ROW = re.compile(r"^\| (?P<app>[\w.*() ]+?) \| (?P<sqlite>\d+) \| (?P<djongo>\d+) \| [\d.–]+ \|")


class AppCount(NamedTuple):
    app: str
    sqlite: int
    djongo: int


def read_counts(report: Path) -> tuple[list[AppCount], AppCount]:
    """The apps' rows and the total row of the report's comparison table."""
    apps: list[AppCount] = []
    total = None
    for line in report.read_text().splitlines():
        m = ROW.match(line)
        if not m:
            continue
        row = AppCount(m["app"].strip("* "), int(m["sqlite"]), int(m["djongo"]))
        if row.app == "total":
            total = row
        else:
            apps.append(row)
    if total is None or not apps:
        raise ValueError(f"{report} has no comparison with SQLite (made without --sqlite?)")
    return apps, total


def plot(report: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    apps, total = read_counts(report)
    behind = sorted((a for a in apps if a.djongo < a.sqlite),
                    key=lambda a: a.sqlite - a.djongo)
    level = len(apps) - len(behind)
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(behind) + 1.8))
    labels = [f"{a.app} ({a.djongo}/{a.sqlite})" for a in behind]
    gaps = [a.sqlite - a.djongo for a in behind]
    bars = ax.barh(labels, gaps, color="#c0504d")
    ax.bar_label(bars, labels=[f"{100 * a.djongo / a.sqlite:.1f}%" for a in behind],
                 padding=3, fontsize=8)
    ax.set_xlabel("tests SQLite passes that djongo does not")
    ax.tick_params(axis="y", labelsize=8)
    ax.set_title(
        f"Django {version(report)} suite: djongo passes {total.djongo} of the {total.sqlite} "
        f"tests SQLite passes ({100 * total.djongo / total.sqlite:.1f}%)\n"
        f"{level} of {len(apps)} apps pass everything SQLite passes; the others:",
        fontsize=9)
    ax.margins(x=0.15)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def version(report: Path) -> str:
    m = re.search(r"^Django (\S+),", report.read_text(), re.MULTILINE)
    return m.group(1) if m else ""


def main(argv: list[str]) -> int:
    report = Path(argv[0]) if argv else ROOT / "docs/compatibility.md"
    out = report.with_suffix(".png")
    try:
        plot(report, out)
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no plot", file=sys.stderr)
        return 1
    print(f"plot written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
