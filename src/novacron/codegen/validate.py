"""Validation of a candidate: the failing tests pass and no passing test fails.

A candidate is first run against the failing tests only (cheap rejection), then against
the whole command. Test files are never written: a candidate for a test file is refused
before it touches the disk.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from novacron.codegen.candidates import Candidate
from novacron.codegen.sandbox import SandboxLimits
from novacron.codegen.testrun import TestRun, is_test_file, run_tests

__all__ = ["Validation", "Validator"]


@dataclass(frozen=True, slots=True)
class Validation:
    """The verdict on one candidate."""

    candidate: Candidate
    plausible: bool
    detail: str
    run: TestRun | None = None


class Validator:
    """Tries candidates in one worktree against a baseline run."""

    def __init__(self, worktree: Path, command: str, baseline: TestRun, limits: SandboxLimits, test_timeout_s: float):
        self.worktree = worktree
        self.command = command
        self.baseline = baseline
        self.limits = limits
        self.test_timeout_s = test_timeout_s
        self.tried = 0

    def _run(self, only: frozenset[str] | None) -> TestRun:
        env = dict(os.environ)
        if only:  # the quick check stops at the first failure: a hung test costs one deadline, not all
            env["NOVACRON_FIX_ONLY"] = "\n".join(sorted(only))
            env["PYTEST_ADDOPTS"] = f"{env.get('PYTEST_ADDOPTS', '')} -x".strip()
        return run_tests(self.command, self.worktree, self.limits, test_timeout_s=self.test_timeout_s, env=env)

    def judge(self, run: TestRun) -> tuple[bool, str]:
        """Failing tests now pass, and every test that passed still passes."""
        if run.collect_errors:
            return False, "collection error"
        still = sorted(t for t in self.baseline.failed if run.outcomes.get(t) != "passed")
        broken = sorted(t for t in self.baseline.passed if run.outcomes.get(t) != "passed")
        if still:
            return False, f"{len(still)} failing test(s) still fail ({still[0]})"
        if broken:
            return False, f"{len(broken)} passing test(s) now fail ({broken[0]})"
        return True, f"{len(self.baseline.failed)} failing test(s) fixed, {len(self.baseline.passed)} still pass"

    def validate(self, candidate: Candidate) -> Validation:
        """Apply, test, restore the original file."""
        if is_test_file(candidate.file):
            return Validation(candidate, False, "refused: candidates never edit test files")
        path = self.worktree / candidate.file
        original = path.read_text(encoding="utf-8")
        self.tried += 1
        try:
            path.write_text(candidate.source, encoding="utf-8")
            pytest_ids = frozenset(t for t in self.baseline.failed if t != "<command>")
            if pytest_ids:
                quick = self._run(pytest_ids)
                if any(quick.outcomes.get(t) != "passed" for t in pytest_ids):
                    return Validation(candidate, False, "failing tests still fail", quick)
            full = self._run(None)
            ok, detail = self.judge(full)
            return Validation(candidate, ok, detail, full)
        finally:
            path.write_text(original, encoding="utf-8")
