"""Runs test files of redis-py's own test suite against one server and records each test's
outcome, so that tests/redis_py_suite.rs can compare the outcomes on valkey-server and on
ferrokv test by test.

    upstream_suite.py SUITE_DIR PORT PROTOCOL OUT (FILE | NODE_ID)...

SUITE_DIR is the unpacked redis-py source distribution (scripts/fetch-redis-py-suite). Its
tests run with its own `redis` package, so the client and its tests always match. OUT gets
one line per test, `outcome<TAB>node id<TAB>detail`: outcome is passed, failed, error,
skipped, xfailed or xpassed; detail is the last line of a failure's report (empty when it
passed).
"""

import os
import sys


def main():
    suite, port, protocol, out, *targets = sys.argv[1:]
    suite = os.path.abspath(suite)
    # The suite's conftest and tests import `redis`: the copy beside them, not an installed one.
    sys.path.insert(0, suite)
    os.chdir(suite)
    import pytest

    class Outcomes:
        def __init__(self):
            self.results = {}

        def pytest_runtest_logreport(self, report):
            detail = ""
            if report.failed or (report.skipped and report.when != "call"):
                text = getattr(report, "longreprtext", "") or ""
                lines = [line for line in text.splitlines() if line.strip()]
                detail = " ".join(lines[-1].split())[:300] if lines else ""
            xfail = hasattr(report, "wasxfail")
            if report.when == "setup":
                if report.skipped:
                    self.results[report.nodeid] = ["skipped", detail]
                elif report.failed:
                    self.results[report.nodeid] = ["error", detail]
            elif report.when == "call":
                if xfail:
                    outcome = "xfailed" if report.skipped else "xpassed"
                else:
                    outcome = report.outcome
                self.results[report.nodeid] = [outcome, detail]
            elif report.when == "teardown" and report.failed:
                # A teardown that fails (its FLUSHDB, a client's close) taints the test.
                self.results[report.nodeid] = ["error", detail]

    outcomes = Outcomes()
    args = [
        *targets,
        f"--redis-url=redis://127.0.0.1:{port}",
        f"--protocol={protocol}",
        "-p",
        "no:cacheprovider",
        "-q",
        "--no-header",
        "--timeout=30",
        # The suite's own addopts turn output capture off; the tests' prints would flood.
        "-o",
        "addopts=",
        "-W",
        "ignore",
    ]
    code = pytest.main(args, plugins=[outcomes])
    with open(out, "w") as f:
        for node_id, (outcome, detail) in sorted(outcomes.results.items()):
            f.write(f"{outcome}\t{node_id}\t{detail}\n")
    # 0: all passed, 1: some failed. Both are results; anything else (an internal error, a
    # usage error, nothing collected) is not.
    sys.exit(0 if code in (0, 1) else code)


if __name__ == "__main__":
    main()
