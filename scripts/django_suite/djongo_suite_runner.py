"""A DiscoverRunner that records each test's outcome to a JSON file.

Reading outcomes from the result object, rather than from verbose console
output, keeps the per-test report exact (DJONGO_SUITE_RESULTS names the file).

A few of Django's tests check an algorithm's complexity by comparing wall-clock
times (timing_tests.txt): they use no database, and on a loaded machine they
fail on any backend. Such a test that fails is run again, up to TIMING_ATTEMPTS
times in all, and counts as passed only if one attempt passes; the report says
when it needed another attempt.
"""

import json
import os
import traceback
import unittest
from pathlib import Path

from django.test.runner import DiscoverRunner

TIMING_TESTS_FILE = Path(__file__).with_name("timing_tests.txt")
TIMING_ATTEMPTS = 3


def _timing_tests() -> set[str]:
    lines = TIMING_TESTS_FILE.read_text().splitlines()
    return {line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()}


def _tests_of(suite):
    for test in suite:
        if isinstance(test, unittest.TestSuite):
            yield from _tests_of(test)
        else:
            yield test


def _test_id(test) -> str:
    # Errors in setUpClass/setUpModule arrive as _ErrorHolder objects.
    return getattr(test, "id", lambda: str(test))()


class RecordingResult(unittest.TextTestResult):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.outcomes = {}

    def _record(self, test, outcome, detail=""):
        self.outcomes[_test_id(test)] = {"outcome": outcome, "detail": detail[-2000:]}

    def addSuccess(self, test):
        super().addSuccess(test)
        self._record(test, "passed")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._record(test, "failed", "".join(traceback.format_exception_only(*err[:2])))

    def addError(self, test, err):
        super().addError(test, err)
        self._record(test, "error", "".join(traceback.format_exception_only(*err[:2])))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._record(test, "skipped", reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._record(test, "passed", "expected failure")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._record(test, "failed", "unexpected success")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            kind = "failed" if issubclass(err[0], test.failureException) else "error"
            self._record(test, kind, "".join(traceback.format_exception_only(*err[:2])))

    def write_outcomes(self):
        path = os.environ.get("DJONGO_SUITE_RESULTS")
        if path:
            with open(path, "w") as fh:
                json.dump(self.outcomes, fh, indent=0, sort_keys=True)


class RecordingRunner(DiscoverRunner):
    def __init__(self, *args, **kwargs):
        # Databases cannot be cloned, so one process per app run.
        kwargs["parallel"] = 1
        super().__init__(*args, **kwargs)

    def get_resultclass(self):
        return RecordingResult

    def run_suite(self, suite, **kwargs):
        # The suite forgets its tests as it runs them: keep the timing ones.
        timing = _timing_tests()
        kept = [t for t in _tests_of(suite) if _test_id(t) in timing]
        result = super().run_suite(suite, **kwargs)
        for test in kept:
            test_id = _test_id(test)
            if result.outcomes.get(test_id, {}).get("outcome") not in ("failed", "error"):
                continue
            for attempt in range(2, TIMING_ATTEMPTS + 1):
                retry = unittest.TestResult()
                test(retry)
                if retry.wasSuccessful():
                    result.outcomes[test_id] = {
                        "outcome": "passed",
                        "detail": f"timing test: passed on attempt {attempt} of {TIMING_ATTEMPTS}",
                    }
                    break
        result.write_outcomes()
        return result
