"""A pytest plugin the fixer loads into the code under test (``-p novacron_fixprobe``).

It is copied alone into a temporary directory and imported by the tested interpreter,
so it imports nothing from NovaCron. It records each test's outcome, the standard Python
traceback of each failure (with the arguments of the innermost frame inside the
repository, for regression tests), collection errors, and — when asked — per-test line
coverage for spectrum-based fault localisation. A per-test alarm turns a hung test into
a ``FixProbeTimeout`` raised where the code loops, so the traceback names the loop.
"""

from __future__ import annotations

import ast
import json
import os
import signal
import traceback
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

_RESULTS = os.environ.get("NOVACRON_FIX_RESULTS", "")
_COVERAGE = os.environ.get("NOVACRON_FIX_COVERAGE", "")
_ROOT = os.environ.get("NOVACRON_FIX_ROOT", str(Path.cwd()))
_TEST_TIMEOUT = float(os.environ.get("NOVACRON_FIX_TEST_TIMEOUT", "0") or 0)

_state: dict[str, Any] = {"outcomes": {}, "failures": {}, "collect_errors": [], "calls": {}}
_cov: Any = None


class FixProbeTimeoutError(Exception):
    """Raised inside a test that ran past its per-test deadline."""


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise FixProbeTimeoutError(f"Timeout: test ran longer than {_TEST_TIMEOUT:g}s")


def pytest_configure(config: Any) -> None:
    """Start coverage before the code under test is imported."""
    global _cov  # noqa: PLW0603 - one coverage session per test process
    if not _COVERAGE:
        return
    try:
        import coverage  # noqa: PLC0415 - optional in the tested environment
    except ImportError:
        return
    _cov = coverage.Coverage(data_file=_COVERAGE, source=[_ROOT], branch=False)
    _cov.start()


def pytest_runtest_setup(item: Any) -> None:
    """Tag coverage with the test id; arm the per-test deadline."""
    if _cov is not None:
        _cov.switch_context(item.nodeid)
    if _TEST_TIMEOUT > 0:
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, _TEST_TIMEOUT)


def pytest_runtest_teardown(item: Any) -> None:
    """Disarm the deadline."""
    if _TEST_TIMEOUT > 0:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _literal(value: object) -> str | None:
    try:
        text = repr(value)
        ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
        return None
    return text if len(text) < 2000 else None


def _innermost_call(tb: TracebackType | None) -> dict[str, Any] | None:
    """The innermost frame in the repository outside tests, with literal arguments."""
    found: dict[str, Any] | None = None
    while tb is not None:
        code = tb.tb_frame.f_code
        path = Path(code.co_filename)
        inside = str(path).startswith(_ROOT) and "test" not in path.name and code.co_name != "<module>"
        if inside:
            argnames = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
            args = {n: _literal(tb.tb_frame.f_locals.get(n)) for n in argnames}
            found = {"file": str(path), "func": code.co_name, "args": args, "qualname": code.co_qualname}
        tb = tb.tb_next
    return found


def pytest_runtest_makereport(item: Any, call: Any) -> None:
    """Keep the real traceback of a failing call phase."""
    if call.excinfo is None or call.when != "call":
        return
    exc = call.excinfo.value
    _state["failures"][item.nodeid] = "".join(traceback.format_exception(exc))
    found = _innermost_call(exc.__traceback__)
    if found is not None:
        found["exc_type"] = type(exc).__name__
        _state["calls"][item.nodeid] = found


def pytest_runtest_logreport(report: Any) -> None:
    """Record one outcome per test: failed wins over passed."""
    outcomes = _state["outcomes"]
    if report.failed:
        outcomes[report.nodeid] = "failed"
        _state["failures"].setdefault(report.nodeid, report.longreprtext)
    elif report.when == "call":
        outcomes.setdefault(report.nodeid, "passed" if report.passed else "skipped")


def pytest_collectreport(report: Any) -> None:
    """Collection errors mean the test command cannot judge a patch."""
    if report.failed:
        _state["collect_errors"].append(f"{report.nodeid}: {report.longreprtext[-2000:]}")


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    """Stop coverage and write the results file."""
    if _cov is not None:
        _cov.stop()
        _cov.save()
    if _RESULTS:
        _state["exitstatus"] = int(exitstatus)
        Path(_RESULTS).write_text(json.dumps(_state), encoding="utf-8")


def pytest_collection_modifyitems(session: Any, config: Any, items: list[Any]) -> None:
    """With ``NOVACRON_FIX_ONLY``, run only the named tests (a quick first check of a candidate)."""
    only = os.environ.get("NOVACRON_FIX_ONLY", "")
    if only:
        wanted = set(only.split("\n"))
        items[:] = [i for i in items if i.nodeid in wanted]
