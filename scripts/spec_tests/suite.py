"""Runs one suite of pymongo's unified-format tests; started by run.py, one process per suite.

    python suite.py SDIST_TEST_ROOT SUITE_DIR CLASS_PREFIX RESULTS_JSON

``SDIST_TEST_ROOT`` is a directory whose only entry is ``test``, pymongo's test package
from its sdist (a link), so ``import test`` finds it and not CPython's own ``test``
package, while ``import pymongo`` stays the installed driver. The server to test is
named by ``DB_IP``/``DB_PORT``, as pymongo's harness expects.

pymongo's files are used as they are. Two changes are made to the running harness, not
to its files: its result matcher compares array lengths, as the format's specification
requires (``check_list_lengths``), and the tests of ``skips.txt``, which a one-node
replica set cannot pass, are skipped with their reason.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import unittest
from collections import abc
from pathlib import Path

# pymongo's own list of operations its driver lacks (test_retryable_reads_unified.py):
# those tests fail by design and say nothing about a server.
DRIVER_EXPECTED_FAILURES = {
    "retryable_reads/unified": ["ListDatabaseObjects .*", "ListCollectionObjects .*",
                                "MapReduce .*"],
}


def read_one_node_skips(path: Path) -> dict[str, str]:
    """``skips.txt``: tests a one-node replica set cannot pass, with the reason."""
    skips = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            test_id, _, reason = line.partition("  # ")
            skips[test_id.strip()] = reason.strip()
    return skips


def skip_one_node_impossible(mixin: type, skips: dict[str, str], test_id) -> None:
    """Skips, before they run, the tests of ``skips``."""
    original = mixin.maybe_skip_test

    def maybe_skip_test(self, spec):
        reason = skips.get(test_id(self))
        if reason:
            self.skipTest(reason)
        return original(self, spec)

    mixin.maybe_skip_test = maybe_skip_test


def check_list_lengths(match_evaluator_class: type) -> None:
    """Makes the result matcher compare array lengths.

    The unified test format's specification: "When comparing arrays, expected and actual
    values MUST contain the same number of elements". pymongo's matcher (4.x) zips the two
    lists, so a server answering extra documents would pass.
    """
    original = match_evaluator_class.match_result

    def match_result(self, expectation, actual, in_recursive_call=False, test=True):
        if isinstance(expectation, abc.MutableSequence) and isinstance(
            actual, abc.MutableSequence
        ) and len(expectation) != len(actual):
            if not test:
                return False
            self.test.fail(
                f"expected {len(expectation)} elements, got {len(actual)}: "
                f"expected {expectation!r}, actual {actual!r}"
            )
        return original(self, expectation, actual, in_recursive_call, test)

    match_evaluator_class.match_result = match_result


def describe_requirements(requirements: list[dict], satisfied) -> str:
    """Why none of a test's ``runOnRequirements`` holds, e.g. "needs MongoDB >= 8.0"."""
    alternatives = []
    for requirement in requirements:
        unmet = []
        for key, value in requirement.items():
            if satisfied({key: value}):
                continue
            if key == "minServerVersion":
                unmet.append(f"MongoDB >= {value}")
            elif key == "maxServerVersion":
                unmet.append(f"MongoDB <= {value}")
            elif key == "topologies":
                unmet.append("a " + " or ".join(value) + " topology")
            elif key == "serverless":
                unmet.append("a serverless deployment")
            elif key == "auth":
                unmet.append("authentication" if value else "no authentication")
            elif key == "csfle":
                unmet.append("client-side field level encryption (pymongocrypt)")
            elif key == "serverParameters":
                unmet.append("server parameters " + ", ".join(f"{k}={v}" for k, v in value.items()))
            else:
                unmet.append(f"{key}: {value}")
        alternatives.append(" and ".join(unmet) or "(unknown)")
    return "needs " + "; or ".join(sorted(set(alternatives)))


class Recorder(unittest.TestResult):
    """Keeps each test's outcome, with the reason of a skip and the error of a failure."""

    def __init__(self, names: dict[str, str]) -> None:
        super().__init__()
        self.names = names
        self.outcomes: dict[str, dict] = {}
        self.started = 0.0

    def test_id(self, test: unittest.TestCase) -> str:
        cls = type(test).__name__
        method = getattr(test, "_testMethodName", "")
        description = getattr(getattr(test, method, None), "spec_description", method)
        return f"{self.names.get(cls, cls)}: {description}"

    def record(self, test, outcome: str, detail: str = "") -> None:
        self.outcomes[self.test_id(test)] = {
            "outcome": outcome, "detail": detail,
            "seconds": round(time.monotonic() - self.started, 2),
        }

    def startTest(self, test):  # noqa: N802 (unittest's names)
        super().startTest(test)
        self.started = time.monotonic()
        print(f"  {self.test_id(test)}", file=sys.stderr, flush=True)

    def addSuccess(self, test):  # noqa: N802
        self.record(test, "passed")

    def addFailure(self, test, err):  # noqa: N802
        self.record(test, "failed", self._exc_info_to_string(err, test))

    def addError(self, test, err):  # noqa: N802
        if isinstance(test, unittest.TestCase):
            self.record(test, "error", self._exc_info_to_string(err, test))
        else:  # a class fixture failed: unittest reports it as a pseudo-test
            detail = "".join(traceback.format_exception(*err))
            self.outcomes[str(test)] = {"outcome": "error", "detail": detail, "seconds": 0}

    def addSkip(self, test, reason):  # noqa: N802
        if "runOnRequirements not satisfied" in reason:
            reason = self.unmet_requirements(test) or reason
        self.record(test, "skipped", reason)

    @staticmethod
    def unmet_requirements(test) -> str | None:
        from test import unified_format

        satisfied = unified_format.is_run_on_requirement_satisfied
        spec = getattr(getattr(test, test._testMethodName, None), "spec", {})
        for requirements in (type(test).TEST_SPEC.get("runOnRequirements"),
                             spec.get("runOnRequirements")):
            if requirements and not any(satisfied(r) for r in requirements):
                return describe_requirements(requirements, satisfied)
        return None

    def addExpectedFailure(self, test, err):  # noqa: N802
        self.record(test, "skipped", "PyMongo does not implement this operation "
                    "(an expected failure of pymongo's own run)")

    def addUnexpectedSuccess(self, test):  # noqa: N802
        self.record(test, "passed")


def main() -> int:
    root, suite_dir, prefix, results = sys.argv[1:5]
    sys.path.insert(0, root)
    import test  # pymongo's test package
    from test import unified_format, unified_format_shared

    check_list_lengths(unified_format_shared.MatchEvaluatorUtil)
    test.setup()
    if not test.client_context.connected:
        print(test.client_context.connection_attempt_info(), file=sys.stderr)
        return 2
    # A relative suite_dir is under pymongo's test/; an absolute one (picked files)
    # is taken as it is.
    test_dir = Path(unified_format.get_test_path(*suite_dir.split("/")))
    if Path(suite_dir).is_absolute():
        test_dir = Path(suite_dir)
    classes = unified_format.generate_test_classes(
        str(test_dir),
        module="spec_tests_" + prefix.lower(),
        class_name_prefix=prefix,
        expected_failures=DRIVER_EXPECTED_FAILURES.get(suite_dir, []),
    )
    loader = unittest.TestLoader()
    # Each test is named by its file (relative to the suite) and its description, as in
    # the specifications repository; the class names follow generate_test_classes.
    names: dict[str, str] = {}
    for path in test_dir.rglob("*.json"):
        snake = "Test{}_{}_{}".format(prefix, path.parent.name.replace("-", "_"),
                                      path.stem.replace("-", "_").replace(".", "_"))
        names[unified_format.snake_to_camel(snake)] = str(
            path.relative_to(test_dir).with_suffix(""))
    tests: list[unittest.TestCase] = []
    for cls in classes.values():
        for spec in cls.TEST_SPEC["tests"]:
            method = "test_{}".format(
                spec["description"].strip(". ").replace(" ", "_").replace(".", "_"))
            func = getattr(cls, method, None)
            if func is not None:
                func.spec_description = spec["description"]
                func.spec = spec
        tests.extend(loader.loadTestsFromTestCase(cls))
    recorder = Recorder(names)
    suite_name = os.environ.get("DJONGO_SPEC_SUITE", "")
    skips = read_one_node_skips(Path(__file__).with_name("skips.txt"))
    skip_one_node_impossible(unified_format.UnifiedSpecTestMixinV1, skips,
                             lambda t: f"{suite_name}/{recorder.test_id(t)}")
    keyword = os.environ.get("DJONGO_SPEC_KEYWORD", "").lower()
    suite = unittest.TestSuite(t for t in tests if keyword in recorder.test_id(t).lower())
    suite.run(recorder)
    test.client_context.client.close()
    test.global_knobs.disable()
    Path(results).write_text(json.dumps(recorder.outcomes, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
