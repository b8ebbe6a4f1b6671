"""Runs Django's own test suite (from the Django sdist on PyPI) on djongo.

    scripts/django-suite                 # every app in apps.txt, report to docs/compatibility.md
    scripts/django-suite --check         # every app, checked against known failures (CI)
    scripts/django-suite --fast          # a quick subset, checked against known failures
    scripts/django-suite basic lookup    # some apps
    scripts/django-suite --sqlite        # also on Django's sqlite3 backend: the report
                                         # counts each app's tests up to what SQLite passes

Each app runs in its own ``runtests.py`` process with its own embedded data
directory; two apps run at a time. With ``--sqlite`` every app also runs on
Django's own sqlite3 backend (djongo_suite_settings_sqlite.py, the same
settings otherwise), and the report shows, per app, how many tests SQLite
passes and how many of those pass on djongo. Outcomes come from a recording test
runner (djongo_suite_runner.py). ``--check`` fails on a test that fails and
is not in known_failures.txt, and on a listed test that now passes, so the
list only ever shrinks.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import django
from report_plot import plot as plot_report

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CACHE = ROOT / ".cache"
KNOWN_FAILURES = HERE / "known_failures.txt"
FLAKY = HERE / "flaky.txt"


def django_tests_dir() -> Path:
    """The tests/ directory of the sdist matching the installed Django."""
    version = django.get_version()
    target = CACHE / f"django-{version}"
    if not (target / "tests" / "runtests.py").exists():
        CACHE.mkdir(exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:",
             "--no-deps", f"django=={version}", "-d", str(CACHE)],
            check=True,
        )
        with tarfile.open(CACHE / f"django-{version}.tar.gz") as archive:
            archive.extractall(CACHE, filter="data")
    return target / "tests"


def read_list(path: Path) -> list[str]:
    lines = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line]


def read_known_failures() -> dict[str, str]:
    known = {}
    for line in KNOWN_FAILURES.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        test_id, _, reason = line.partition("#")
        known[test_id.strip()] = reason.strip()
    return known


SETTINGS = {"djongo": "djongo_suite_settings", "sqlite": "djongo_suite_settings_sqlite"}


def run_app(app: str, tests_dir: Path, timeout: int, backend: str = "djongo",
            labels: list[str] | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"djongo-suite-{app}-") as tmp:
        results = Path(tmp) / "results.json"
        env = {
            **os.environ,
            "DJONGO_SUITE_DATA_DIR": str(Path(tmp) / "data"),
            "DJONGO_SUITE_RESULTS": str(results),
            "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        }
        started = time.monotonic()
        try:
            proc = subprocess.run(
                [sys.executable, "runtests.py", f"--settings={SETTINGS[backend]}",
                 "--noinput", "-v", "1", *(labels or [app])],
                cwd=tests_dir, env=env, capture_output=True, text=True, timeout=timeout,
            )
            crashed = None if results.exists() else (proc.stderr or proc.stdout)[-3000:]
        except subprocess.TimeoutExpired:
            crashed = f"timed out after {timeout}s"
        outcomes = json.loads(results.read_text()) if results.exists() else {}
        return {"app": app, "backend": backend, "outcomes": outcomes, "crashed": crashed,
                "seconds": round(time.monotonic() - started, 1)}


def summarize(run: dict) -> Counter:
    counts = Counter(o["outcome"] for o in run["outcomes"].values())
    counts["run"] = sum(counts.values())
    return counts


def passed(run: dict | None) -> set[str]:
    if run is None:
        return set()
    return {t for t, o in run["outcomes"].items() if o["outcome"] == "passed"}


# Skip reasons of tests that only ever run on SQLite (or only on Django's
# built-in backends): they test the sqlite3 backend itself, so they are left
# out of the yardstick, and counted apart in the report.
SQLITE_ONLY = re.compile(r"sqlite|built-in database backends", re.IGNORECASE)


def sqlite_only(run: dict) -> set[str]:
    """Tests djongo skips because they are for SQLite alone."""
    return {t for t, o in run["outcomes"].items()
            if o["outcome"] == "skipped" and SQLITE_ONLY.search(o.get("detail") or "")}


def yardstick(run: dict, sqlite_run: dict | None) -> tuple[set[str], int]:
    """The tests SQLite passes that djongo could run, and how many SQLite
    passes that are for SQLite alone."""
    theirs = passed(sqlite_run)
    mine_only = theirs & sqlite_only(run)
    return theirs - mine_only, len(mine_only)


def write_report(runs: list[dict], path: Path, known: dict[str, str],
                 sqlite_runs: dict[str, dict] | None = None) -> None:
    """docs/compatibility.md: per app, our outcomes and (with ``sqlite_runs``)
    how many of the tests SQLite passes pass on djongo too."""
    compare = sqlite_runs is not None
    lines = [
        "# Django's own test suite on djongo",
        "",
        f"Django {django.get_version()}, unmodified `tests/runtests.py`, both aliases on the "
        "embedded engine, `USE_TZ = False`. Made by `scripts/django-suite"
        + (" --sqlite" if compare else "") + "`; a crashed app (the run died before "
        "reporting) counts every test as not run.",
        "",
    ]
    if compare:
        lines += [
            "The yardstick is Django's own sqlite3 backend on the same apps and settings: "
            "**SQLite** is the number of tests SQLite passes, **djongo** how many of those "
            "pass on djongo (a test SQLite skips or fails does not count either way). Tests "
            "written for SQLite alone (skipped on any other backend: `backends.sqlite`, "
            "\"Test only for SQLite\"...) are left out of both columns and counted apart.",
            "",
            "| app | SQLite | djongo | % | run | passed | failed | errors | skipped | seconds |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
    else:
        lines += [
            "| app | run | passed | failed | errors | skipped | seconds |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
    total = Counter()
    yard = Counter()
    for run in sorted(runs, key=lambda r: r["app"]):
        c = summarize(run)
        total.update(c)
        note = " (crashed)" if run["crashed"] else ""
        ours = (f"{c['run']} | {c['passed']} | {c['failed']} | {c['error']} | "
                f"{c['skipped']} | {run['seconds']} |")
        if compare:
            theirs, vendor = yardstick(run, sqlite_runs.get(run["app"]))
            both = len(theirs & passed(run))
            yard.update({"sqlite": len(theirs), "both": both, "vendor": vendor})
            share = f"{100 * both / len(theirs):.1f}" if theirs else "–"
            lines.append(f"| {run['app']}{note} | {len(theirs)} | {both} | {share} | {ours}")
        else:
            lines.append(f"| {run['app']}{note} | {ours}")
    totals = (f"{total['run']} | {total['passed']} | {total['failed']} | "
              f"{total['error']} | {total['skipped']} | |")
    if compare:
        share = 100 * yard["both"] / max(yard["sqlite"], 1)
        lines.append(f"| **total** | {yard['sqlite']} | {yard['both']} | {share:.1f} | {totals}")
    else:
        lines.append(f"| **total** | {totals}")
    executed = total["run"] - total["skipped"]
    lines.append("")
    if compare:
        lines += [
            f"Of the {yard['sqlite']} tests SQLite passes, djongo passes {yard['both']} "
            f"({100 * yard['both'] / max(yard['sqlite'], 1):.1f}%); SQLite also passes "
            f"{yard['vendor']} tests written for SQLite alone, left out.",
            "",
            f"![the apps where djongo passes fewer tests than SQLite]({path.stem}.png)",
            "",
        ]
    lines += [
        f"Passed: {total['passed']} of {total['run']} tests "
        f"({100 * total['passed'] / max(total['run'], 1):.1f}%), "
        f"{100 * total['passed'] / max(executed, 1):.1f}% of those not skipped. "
        "A test is skipped when it needs a feature `DatabaseFeatures` does not declare "
        "(or one for another backend).",
        "",
        "## Why the others fail",
        "",
        "Each failing test is listed with its reason in "
        "`scripts/django_suite/known_failures.txt`; by reason:",
        "",
        "| tests | reason |",
        "| ---: | --- |",
    ]
    reasons = Counter()
    for run in runs:
        for test_id, result in run["outcomes"].items():
            if result["outcome"] in ("failed", "error"):
                reasons[known.get(test_id, "not listed: a new failure")] += 1
    for reason, count in reasons.most_common():
        lines.append(f"| {count} | {reason} |")
    if compare:
        lines += sqlite_only_section(runs, sqlite_runs)
    lines += ["", (HERE / "unsupported.md").read_text().rstrip("\n")]
    path.write_text("\n".join(lines) + "\n")
    if compare:
        try:
            plot_report(path, path.with_suffix(".png"))
        except ImportError:
            print("matplotlib is not installed (pip install -e '.[bench]'): the report's "
                  "plot was not redrawn", file=sys.stderr)


def sqlite_only_section(runs: list[dict], sqlite_runs: dict[str, dict]) -> list[str]:
    """Tests SQLite passes that djongo skips: the features we do not declare."""
    skipped = Counter()
    for run in runs:
        theirs, _ = yardstick(run, sqlite_runs.get(run["app"]))
        for test_id, result in run["outcomes"].items():
            if test_id in theirs and result["outcome"] == "skipped":
                skipped[" ".join(result["detail"].split())[:160]] += 1
    if not skipped:
        return []
    lines = ["", "## Passed by SQLite, skipped on djongo", "", "| tests | skip reason |",
             "| ---: | --- |"]
    lines += [f"| {count} | {reason} |" for reason, count in skipped.most_common()]
    return lines


def check(runs: list[dict], known: dict[str, str]) -> list[str]:
    problems = []
    flaky = set(read_list(FLAKY))
    for run in runs:
        if run["crashed"]:
            problems.append(f"{run['app']}: the run crashed: {run['crashed']}")
        for test_id, result in sorted(run["outcomes"].items()):
            if test_id in flaky:
                continue
            listed = test_id in known or f"{run['app']}:*" in known
            if result["outcome"] in ("failed", "error") and not listed:
                problems.append(f"new failure: {test_id}: {result['detail'].strip()[:300]}")
            if result["outcome"] == "passed" and test_id in known:
                problems.append(f"now passes, remove from known_failures.txt: {test_id}")
        problems += [f"now passes, remove from known_failures.txt: {test_id}"
                     for test_id in class_failures_now_passing(run, known)]
    return problems


def class_failures_now_passing(run: dict, known: dict[str, str]) -> list[str]:
    """Listed ``setUpClass (app.module.Class)`` failures whose class ran a
    test that passed: a class whose setup works reports no outcome under the
    listed id, so the plain check above cannot see it pass."""
    passed_classes = {test_id.rsplit(".", 1)[0] for test_id, result in run["outcomes"].items()
                      if result["outcome"] == "passed"}
    stale = []
    for test_id in known:
        if not test_id.startswith("setUpClass (") or not test_id.endswith(")"):
            continue
        if test_id[len("setUpClass ("):-1] in passed_classes:
            stale.append(test_id)
    return stale


def new_failures(run: dict, known: dict[str, str]) -> list[str]:
    if f"{run['app']}:*" in known:
        return []
    return [test_id for test_id, result in sorted(run["outcomes"].items())
            if result["outcome"] in ("failed", "error") and test_id not in known]


def rerun_alone(run: dict, tests_dir: Path, timeout: int, known: dict[str, str]) -> list[str]:
    """Runs the app's new failures again, by themselves, once.

    On a loaded 2-core machine a test that measures time, or waits for a
    thread, can fail once for reasons that are not ours. A failure that
    passes alone is reported as flaky (and not counted as new); one that
    fails again stays a failure.
    """
    failed = new_failures(run, known)
    if not failed or run["crashed"]:
        return []
    again = run_app(run["app"], tests_dir, timeout, labels=failed)
    flaky = []
    for test_id in failed:
        result = again["outcomes"].get(test_id)
        if result and result["outcome"] == "passed":
            run["outcomes"][test_id] = {
                "outcome": "passed",
                "detail": "failed in the app's run, passed when run again alone: "
                          + run["outcomes"][test_id]["detail"].strip()[-300:],
            }
            flaky.append(test_id)
    return flaky


def record_known_failures(runs: list[dict]) -> None:
    known = read_known_failures()
    lines = []
    for run in runs:
        for test_id, result in sorted(run["outcomes"].items()):
            if result["outcome"] in ("failed", "error") and test_id not in known:
                detail = result["detail"].strip().splitlines()
                reason = " ".join((detail[-1] if detail else result["outcome"]).split())
                lines.append(f"{test_id}  # {reason[:160]}")
    with KNOWN_FAILURES.open("a") as fh:
        fh.writelines(line + "\n" for line in lines)
    print(f"recorded {len(lines)} known failures in {KNOWN_FAILURES}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("apps", nargs="*")
    parser.add_argument("--fast", action="store_true", help="the CI subset, with --check")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--report", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write all outcomes here")
    parser.add_argument("--record-known-failures", action="store_true",
                        help="add today's failures of these apps to known_failures.txt, "
                             "each with its error as the reason")
    parser.add_argument("--sqlite", action="store_true",
                        help="also run the apps on Django's sqlite3 backend; the report "
                             "counts each app's tests up to what SQLite passes")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=1800)
    args = parser.parse_args()

    apps = args.apps or read_list(HERE / ("fast_apps.txt" if args.fast else "apps.txt"))
    tests_dir = django_tests_dir()
    with ThreadPoolExecutor(args.jobs) as pool:
        runs = []
        for run in pool.map(lambda app: run_app(app, tests_dir, args.timeout), apps):
            c = summarize(run)
            status = "CRASHED " if run["crashed"] else ""
            print(f"{status}{run['app']}: {c['passed']}/{c['run']} passed, {c['failed']} failed, "
                  f"{c['error']} errors, {c['skipped']} skipped ({run['seconds']}s)", flush=True)
            runs.append(run)
    if args.check or args.fast:
        known = read_known_failures()
        for run in runs:
            for test_id in rerun_alone(run, tests_dir, args.timeout, known):
                print(f"flaky (failed in the app's run, passed alone): {test_id}", flush=True)
    sqlite_runs = None
    if args.sqlite:
        sqlite_runs = {}
        with ThreadPoolExecutor(args.jobs) as pool:
            for run in pool.map(
                    lambda app: run_app(app, tests_dir, args.timeout, "sqlite"), apps):
                c = summarize(run)
                status = "CRASHED " if run["crashed"] else ""
                print(f"{status}sqlite {run['app']}: {c['passed']}/{c['run']} passed, "
                      f"{c['failed']} failed, {c['error']} errors, {c['skipped']} skipped "
                      f"({run['seconds']}s)", flush=True)
                sqlite_runs[run["app"]] = run
        sticks = [yardstick(r, sqlite_runs.get(r["app"])) for r in runs]
        both = sum(len(passed(r) & theirs) for r, (theirs, _) in zip(runs, sticks, strict=True))
        theirs = sum(len(t) for t, _ in sticks)
        print(f"Of the {theirs} tests SQLite passes, djongo passes {both} "
              f"({100 * both / max(theirs, 1):.1f}%); {sum(v for _, v in sticks)} tests for "
              "SQLite alone left out")
    # A checking run (CI) leaves the committed report alone unless asked.
    report = args.report or (
        None if args.apps or args.fast or args.check else ROOT / "docs/compatibility.md")
    if report:
        write_report(runs, report, read_known_failures(), sqlite_runs)
        print(f"report written to {report}")
    if args.json:
        args.json.write_text(json.dumps(runs + list((sqlite_runs or {}).values()),
                                        indent=1, sort_keys=True))
    total = Counter()
    for run in runs:
        total.update(summarize(run))
    failing = total["failed"] + total["error"]
    if args.record_known_failures:
        record_known_failures(runs)
    if args.check or args.fast:
        problems = check(runs, read_known_failures())
        for problem in problems:
            print(problem)
        # Worded unlike a test runner's "N passed, N failed" closing line:
        # listed failures are expected, and only `problems` fail the run.
        print(f"Django suite totals: passed {total['passed']}, failing {failing} "
              f"(listed as known: {failing - len([p for p in problems if p.startswith('new')])}), "
              f"skipped {total['skipped']}; {len(problems)} problem(s)")
        return 1 if problems else 0
    print(f"Django suite totals: passed {total['passed']}, failing {failing}, "
          f"skipped {total['skipped']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
