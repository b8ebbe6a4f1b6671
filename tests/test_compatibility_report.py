"""The committed compatibility report and the chart drawn from it agree."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts/django_suite"))

from report_plot import read_counts  # noqa: E402


def test_report_totals_are_the_sum_of_its_apps():
    apps, total = read_counts(ROOT / "docs/compatibility.md")
    assert len(apps) == len({a.app for a in apps}) > 100
    assert total.sqlite == sum(a.sqlite for a in apps)
    assert total.djongo == sum(a.djongo for a in apps)
    assert all(0 <= a.djongo <= a.sqlite for a in apps)


def test_report_links_its_chart():
    report = (ROOT / "docs/compatibility.md").read_text()
    assert "](compatibility.png)" in report
    assert (ROOT / "docs/compatibility.png").stat().st_size > 0
