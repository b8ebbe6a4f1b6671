"""A DiscoverRunner that records each test's outcome to a JSON file.

Reading outcomes from the result object, rather than from verbose console
output, keeps the per-test report exact (DJONGO_SUITE_RESULTS names the file).
"""

import json
import os
import traceback
import unittest

from django.test.runner import DiscoverRunner


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

    def stopTestRun(self):
        super().stopTestRun()
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
