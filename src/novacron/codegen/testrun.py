"""One run of the user's test command, with per-test outcomes when it is pytest.

The probe plugin (``_probe.py``) is copied into a fresh directory on ``PYTHONPATH`` and
loaded through ``PYTEST_ADDOPTS``, so any pytest invocation inside the command reports
every test. Other commands are judged by their exit code alone, as one test.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from novacron.codegen.sandbox import SandboxLimits, SandboxResult, run_sandboxed

__all__ = ["TestRun", "is_test_file", "run_tests"]

_PROBE = Path(__file__).with_name("_probe.py")


def is_test_file(rel: str) -> bool:
    """Test files and fixtures the fixer must never edit."""
    p = Path(rel)
    return (
        p.name.startswith("test_")
        or p.name.endswith("_test.py")
        or p.name == "conftest.py"
        or any(part in {"tests", "test", "testing"} for part in p.parts[:-1])
    )


@dataclass(frozen=True, slots=True)
class TestRun:
    """Outcome of the test command: per test, plus what the probe saw."""

    __test__ = False  # not a pytest test class

    outcomes: Mapping[str, str]
    failures: Mapping[str, str] = field(default_factory=dict)
    collect_errors: tuple[str, ...] = ()
    calls: Mapping[str, Any] = field(default_factory=dict)
    coverage_file: Path | None = None
    sandbox: SandboxResult | None = None

    @property
    def failed(self) -> frozenset[str]:
        """Tests that failed (or errored)."""
        return frozenset(t for t, o in self.outcomes.items() if o == "failed")

    @property
    def passed(self) -> frozenset[str]:
        """Tests that passed."""
        return frozenset(t for t, o in self.outcomes.items() if o == "passed")


def run_tests(
    command: str,
    cwd: Path,
    limits: SandboxLimits,
    *,
    coverage_file: Path | None = None,
    test_timeout_s: float = 10.0,
    env: Mapping[str, str] | None = None,
) -> TestRun:
    """Run the command once in the sandbox and collect what the probe recorded."""
    probe_dir = Path(tempfile.mkdtemp(prefix="novacron-probe-"))
    try:
        shutil.copy(_PROBE, probe_dir / "novacron_fixprobe.py")
        results = probe_dir / "results.json"
        full = dict(env if env is not None else os.environ)
        full.update(
            {
                "NOVACRON_FIX_RESULTS": str(results),
                "NOVACRON_FIX_ROOT": str(cwd),
                "NOVACRON_FIX_TEST_TIMEOUT": str(test_timeout_s),
                "PYTEST_ADDOPTS": f"{full.get('PYTEST_ADDOPTS', '')} -p novacron_fixprobe -p no:cacheprovider".strip(),
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        if coverage_file is not None:
            full["NOVACRON_FIX_COVERAGE"] = str(coverage_file)
        result = run_sandboxed(command, cwd=cwd, env=full, limits=limits, probe_dir=probe_dir)
        if not results.exists():  # not pytest, or killed before the session finished
            outcome = "passed" if result.returncode == 0 and not result.timed_out else "failed"
            return TestRun({"<command>": outcome}, {"<command>": result.output[-4000:]}, sandbox=result)
        data = json.loads(results.read_text(encoding="utf-8"))
        return TestRun(
            outcomes=data["outcomes"],
            failures=data["failures"],
            collect_errors=tuple(data["collect_errors"]),
            calls=data["calls"],
            coverage_file=coverage_file if coverage_file is not None and coverage_file.exists() else None,
            sandbox=result,
        )
    finally:
        shutil.rmtree(probe_dir, ignore_errors=True)
