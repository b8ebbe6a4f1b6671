"""Runs MongoDB's driver specification tests (unified test format) against djongo-server.

    scripts/spec-tests                      # every suite; report to docs/spec-tests.md
    scripts/spec-tests --check              # every suite, checked against known failures (CI)
    scripts/spec-tests crud sessions        # some suites
    scripts/spec-tests crud -k 'aggregate'  # tests whose id contains a word

The tests and their runner come from pymongo's sdist on PyPI, the version installed in
this environment (cached under .cache/). Each suite runs in its own process against its
own ``djongo-server --enable-test-commands`` on a loopback port, with a fresh data
directory; the server is stopped afterwards. ``--check`` fails on a test that fails and
is not in known_failures.txt, and on a listed test that now passes, so the list only
ever shrinks.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CACHE = ROOT / ".cache"
KNOWN_FAILURES = HERE / "known_failures.txt"
SKIPS = HERE / "skips.txt"
REPORT = ROOT / "docs" / "spec-tests.md"


@dataclass(frozen=True)
class Suite:
    name: str
    #: Directory under pymongo's test/ holding the suite's JSON files.
    path: str
    #: Class-name prefix: transactions/unified and transactions-convenient-api/unified
    #: share file names (commit.json...), and generate_test_classes names classes by
    #: directory and file, so without a prefix one suite's classes replace the other's.
    prefix: str
    #: Only these files (paths under test/), instead of the whole directory.
    files: tuple[str, ...] = ()
    #: Run against a server requiring authentication (`--user`), as the tests whose
    #: runOnRequirements ask for `auth: true` need.
    auth: bool = False


SUITES = [
    Suite("crud", "crud/unified", "Crud"),
    Suite("transactions", "transactions/unified", "Transactions"),
    Suite("transactions-convenient-api", "transactions-convenient-api/unified", "Convenient"),
    Suite("sessions", "sessions", "Sessions"),
    Suite("retryable-writes", "retryable_writes/unified", "RetryableWrites"),
    Suite("retryable-reads", "retryable_reads/unified", "RetryableReads"),
    Suite("collection-management", "collection_management", "CollectionManagement"),
    Suite("index-management", "index_management", "IndexManagement"),
    Suite("run-command", "run_command/unified", "RunCommand"),
    Suite("command-monitoring", "command_monitoring", "CommandMonitoring"),
    Suite("gridfs", "gridfs", "Gridfs"),
    Suite("change-streams", "change_streams/unified", "ChangeStreams"),
    # The tests that need authentication (handshake errors during SCRAM), run once
    # more against a server with a user.
    Suite("authenticated", "", "Authenticated", files=(
        "retryable_writes/unified/handshakeError.json",
        "retryable_reads/unified/handshakeError.json",
        "transactions/unified/retryable-abort-handshake.json",
        "transactions/unified/retryable-commit-handshake.json",
    ), auth=True),
]

#: The user an authenticated suite's server requires: pymongo's harness logs in with
#: DB_USER/DB_PASSWORD.
TEST_USER = ("user", "password")


def pymongo_test_root() -> Path:
    """A directory holding only pymongo's test package, from the sdist of the installed
    pymongo (downloaded once into .cache/)."""
    version = importlib.metadata.version("pymongo")
    sdist = CACHE / f"pymongo-{version}"
    if not (sdist / "test" / "unified_format.py").exists():
        CACHE.mkdir(exist_ok=True)
        archive = CACHE / f"pymongo-{version}.tar.gz"
        if not archive.exists():
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:",
                 "--no-deps", f"pymongo=={version}", "-d", str(CACHE)],
                check=True,
            )
        with tarfile.open(archive) as tar:
            tar.extractall(CACHE, filter="data")
    # `import test` must find pymongo's package, not CPython's; the sdist root itself
    # cannot go on sys.path, or its pymongo/ sources would shadow the installed driver.
    root = CACHE / f"pymongo-{version}-tests"
    root.mkdir(exist_ok=True)
    link = root / "test"
    if not link.is_symlink():
        link.symlink_to(sdist / "test", target_is_directory=True)
    return root


def default_server() -> str:
    found = shutil.which("djongo-server", path=str(Path(sys.executable).parent))
    return found or "djongo-server"


class Server:
    """A djongo-server on a free loopback port, with test commands, in a fresh data dir."""

    def __init__(self, program: str, data_dir: Path, log: Path, auth: bool) -> None:
        self.log = log
        self.log_file = log.open("w")
        users = ["--user", ":".join(TEST_USER)] if auth else []
        self.proc = subprocess.Popen(
            [program, "--dbpath", str(data_dir), "--bind", "127.0.0.1", "--port", "0",
             "--enable-test-commands", *users],
            stdout=self.log_file, stderr=subprocess.STDOUT,
        )
        self.port = self._wait_for_port()

    def _wait_for_port(self) -> int:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = re.search(r"127\.0\.0\.1:(\d+)", self.log.read_text())
            if found:
                return int(found.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"djongo-server did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()


def run_suite(suite: Suite, test_root: Path, server: str, timeout: int) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"djongo-spec-{suite.name}-") as tmp:
        tmp_path = Path(tmp)
        results = tmp_path / "results.json"
        started = time.monotonic()
        suite_dir = suite.path
        if suite.files:
            # A directory of just these files, each under its suite's name so
            # that files of the same name stay apart.
            picked = tmp_path / "files"
            for name in suite.files:
                link = picked / Path(name).parts[0] / Path(name).name
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(test_root / "test" / name)
            suite_dir = str(picked)
        mongod = Server(server, tmp_path / "data", tmp_path / "server.log", suite.auth)
        env = {**os.environ, "DB_IP": "127.0.0.1", "DB_PORT": str(mongod.port),
               "DJONGO_SPEC_SUITE": suite.name, "PYTHONWARNINGS": "ignore"}
        if suite.auth:
            env.update(DB_USER=TEST_USER[0], DB_PASSWORD=TEST_USER[1])
        try:
            proc = subprocess.run(
                [sys.executable, str(HERE / "suite.py"), str(test_root), suite_dir,
                 suite.prefix, str(results)],
                env=env, capture_output=True, text=True, timeout=timeout,
            )
            crashed = None if results.exists() else (proc.stderr or proc.stdout)[-3000:]
        except subprocess.TimeoutExpired:
            crashed = f"timed out after {timeout}s"
        finally:
            mongod.stop()
        outcomes = json.loads(results.read_text()) if results.exists() else {}
        if mongod.proc.returncode not in (0, -signal.SIGTERM):
            crashed = (crashed or "") + f"\nthe server exited with {mongod.proc.returncode}: " \
                + mongod.log.read_text()[-3000:]
        return {
            "suite": suite.name,
            "outcomes": {f"{suite.name}/{k}": v for k, v in outcomes.items()},
            "crashed": crashed,
            "seconds": round(time.monotonic() - started, 1),
        }


def read_listing(path: Path) -> dict[str, str]:
    """``<suite>/<file>: <description>  # <reason>``, one a line."""
    listed = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        test_id, sep, reason = line.partition("  # ")
        if not sep or not reason.strip():
            raise SystemExit(f"{path}: no '  # reason' in: {line}")
        listed[test_id.strip()] = reason.strip()
    return listed


def read_known_failures() -> dict[str, str]:
    return read_listing(KNOWN_FAILURES)


def summarize(run: dict) -> Counter:
    counts = Counter(o["outcome"] for o in run["outcomes"].values())
    counts["run"] = sum(counts.values())
    counts["failing"] = counts["failed"] + counts["error"]
    return counts


def write_report(runs: list[dict], path: Path, known: dict[str, str]) -> None:
    import pymongo

    lines = [
        "# MongoDB's driver specification tests on the embedded engine",
        "",
        f"pymongo {pymongo.version}'s unified-format suites and runner (`test/unified_format.py`, "
        "from its sdist on PyPI), run unmodified against `djongo-server --enable-test-commands` "
        "(a one-node replica set reporting MongoDB 7.0, fail points enabled) by "
        "`scripts/spec-tests`, with array lengths checked as the format's specification "
        "requires. Each suite gets a server of its own; `authenticated` runs the tests that "
        "need authentication (handshake errors during SCRAM) against a server with a user. "
        "Every failing test is listed with its reason in `scripts/spec_tests/known_failures.txt`; "
        "the tests a one-node replica set cannot pass are skipped with theirs "
        "(`scripts/spec_tests/skips.txt`, and the tests' own requirements: another topology, "
        "another server version).",
        "",
        "| suite | tests | passed | failing (known) | skipped | seconds |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    total = Counter()
    for run in runs:
        c = summarize(run)
        total.update(c)
        note = " (crashed)" if run["crashed"] else ""
        lines.append(f"| {run['suite']}{note} | {c['run']} | {c['passed']} | {c['failing']} | "
                     f"{c['skipped']} | {run['seconds']} |")
    lines.append(f"| **total** | {total['run']} | {total['passed']} | {total['failing']} | "
                 f"{total['skipped']} | |")
    executed = total["passed"] + total["failing"]
    lines += [
        "",
        f"Of the {executed} tests a one-node replica set can run, {total['passed']} pass "
        f"({100 * total['passed'] / max(executed, 1):.1f}%).",
        "",
        "## Why tests are skipped",
        "",
        "| suite | tests | reason |",
        "| --- | ---: | --- |",
    ]
    for run in runs:
        reasons = Counter(o["detail"] for o in run["outcomes"].values()
                          if o["outcome"] == "skipped")
        for reason, count in sorted(reasons.items(), key=lambda rc: (-rc[1], rc[0])):
            lines.append(f"| {run['suite']} | {count} | {reason} |")
    lines += [
        "",
        "## Why tests fail",
        "",
        "| suite | tests | reason |",
        "| --- | ---: | --- |",
    ]
    for run in runs:
        reasons = Counter(known.get(test_id, "not listed: a new failure")
                          for test_id, o in run["outcomes"].items()
                          if o["outcome"] in ("failed", "error"))
        for reason, count in sorted(reasons.items(), key=lambda rc: (-rc[1], rc[0])):
            lines.append(f"| {run['suite']} | {count} | {reason} |")
    path.write_text("\n".join(lines) + "\n")


def check(runs: list[dict], known: dict[str, str], complete: bool) -> list[str]:
    problems = []
    seen = set()
    for run in runs:
        if run["crashed"]:
            problems.append(f"{run['suite']}: the run crashed: {run['crashed']}")
        for test_id, result in sorted(run["outcomes"].items()):
            seen.add(test_id)
            if result["outcome"] in ("failed", "error") and test_id not in known:
                problems.append(f"new failure: {test_id}: {result['detail'].strip()[-600:]}")
            if result["outcome"] in ("passed", "skipped") and test_id in known:
                problems.append(f"now {result['outcome']}, remove from known_failures.txt: "
                                f"{test_id}")
    if complete:
        problems += [f"listed but did not run, remove from known_failures.txt: {test_id}"
                     for test_id in sorted(set(known) - seen)]
        skipped = {test_id for run in runs for test_id, result in run["outcomes"].items()
                   if result["outcome"] == "skipped"}
        problems += [f"listed in skips.txt but not skipped, remove it: {test_id}"
                     for test_id in sorted(set(read_listing(SKIPS)) - skipped)]
    return problems


def record_known_failures(runs: list[dict]) -> None:
    known = read_known_failures()
    lines = []
    for run in runs:
        for test_id, result in sorted(run["outcomes"].items()):
            if result["outcome"] in ("failed", "error") and test_id not in known:
                detail = [line for line in result["detail"].strip().splitlines() if line.strip()]
                reason = " ".join((detail[-1] if detail else result["outcome"]).split())
                lines.append(f"{test_id}  # TODO {reason[:200]}")
    with KNOWN_FAILURES.open("a") as fh:
        fh.writelines(line + "\n" for line in lines)
    print(f"recorded {len(lines)} known failures in {KNOWN_FAILURES}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suites", nargs="*", choices=[[]] + [s.name for s in SUITES],
                        metavar="SUITE", help=", ".join(s.name for s in SUITES))
    parser.add_argument("--check", action="store_true",
                        help="compare with known_failures.txt; exit 1 on any difference")
    parser.add_argument("-k", dest="keyword", help="only tests whose id contains this")
    parser.add_argument("--server", default=default_server(),
                        help="the djongo-server program (default: the one of this environment)")
    parser.add_argument("--report", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write all outcomes here")
    parser.add_argument("--record-known-failures", action="store_true",
                        help="append today's unlisted failures to known_failures.txt")
    parser.add_argument("--jobs", type=int, default=2, help="suites run at a time (default 2)")
    parser.add_argument("--timeout", type=int, default=1800)
    args = parser.parse_args()

    suites = [s for s in SUITES if not args.suites or s.name in args.suites]
    test_root = pymongo_test_root()
    if args.keyword:
        os.environ["DJONGO_SPEC_KEYWORD"] = args.keyword
    runs = []
    # The harness spends most of its time waiting (heartbeats, retries), so
    # two suites run side by side, each against its own server.
    with ThreadPoolExecutor(args.jobs) as pool:
        for run in pool.map(lambda s: run_suite(s, test_root, args.server, args.timeout), suites):
            c = summarize(run)
            status = "CRASHED " if run["crashed"] else ""
            print(f"{status}{run['suite']}: {c['passed']}/{c['run']} passed, "
                  f"{c['failing']} failing, {c['skipped']} skipped ({run['seconds']}s)", flush=True)
            runs.append(run)
    complete = not args.suites and not args.keyword
    report = args.report or (REPORT if complete and not args.check else None)
    known = read_known_failures()
    if report:
        write_report(runs, report, known)
        print(f"report written to {report}")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1, sort_keys=True))
    if args.record_known_failures:
        record_known_failures(runs)
    total = Counter()
    for run in runs:
        total.update(summarize(run))
    problems = check(runs, known, complete) if args.check else []
    for problem in problems:
        print(problem)
    listed = sum(1 for run in runs for test_id, o in run["outcomes"].items()
                 if o["outcome"] in ("failed", "error") and test_id in known)
    print(f"spec tests: passed {total['passed']}, failing {total['failing']} "
          f"(listed as known: {listed}), skipped {total['skipped']}; "
          f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
