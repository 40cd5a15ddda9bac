"""``novacron fix``: crash → root cause → located lines → validated patch on a new branch.

The pipeline: check the repository (git, clean), run the tests once in a temporary
worktree with coverage, take the traceback (from ``--log`` or the failing tests), classify
it, localise, generate candidates (revert, LLM when configured, templates), validate each
in the sandbox, and commit the first one that passes to ``novacron/fix-<id>``. When no
test fails, bandit findings of the known classes are fixed the same way.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from novacron.clock import Clock, MonotonicClock
from novacron.codegen.candidates import Candidate, revert_candidates, template_candidates
from novacron.codegen.finish import finish_fix
from novacron.codegen.gitrepo import GitRepo, Worktree
from novacron.codegen.llm import ChatProvider
from novacron.codegen.localise import Suspect, localise
from novacron.codegen.report import FixReport
from novacron.codegen.sandbox import SandboxLimits, network_isolation
from novacron.codegen.testrun import TestRun, run_tests
from novacron.codegen.traceback import ParsedTraceback, RootCause, classify, find_traceback
from novacron.codegen.validate import Validation, Validator
from novacron.errors import InputError

__all__ = ["FixRequest", "fix"]


@dataclass(frozen=True, slots=True)
class FixRequest:
    """What to fix and how hard to try."""

    repo: Path
    test_command: str
    log_text: str | None = None
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    test_timeout_s: float = 10.0
    max_candidates: int = 200
    time_budget_s: float = 900.0
    llm: ChatProvider | None = None
    security: bool = True
    fix_id: str | None = None


def _baseline(req: FixRequest, wt: Worktree, cov: Path) -> TestRun:
    run = run_tests(req.test_command, wt.path, req.limits, coverage_file=cov, test_timeout_s=req.test_timeout_s)
    if run.collect_errors:
        raise InputError(
            f"the test command fails before any change: collection error in {run.collect_errors[0][:300]}",
            where="--test",
        )
    sandbox = run.sandbox
    if sandbox is not None and sandbox.returncode in (126, 127) and "<command>" in run.outcomes:
        raise InputError(f"the test command could not be run: {sandbox.output.strip()[-300:]}", where="--test")
    if sandbox is not None and sandbox.returncode in (3, 4) and not run.outcomes:
        raise InputError(f"pytest refused the command: {sandbox.output.strip()[-300:]}", where="--test")
    return run


def _traceback_of(req: FixRequest, run: TestRun) -> ParsedTraceback | None:
    if req.log_text is not None:
        return find_traceback(req.log_text, where="--log")
    for test in sorted(run.failed):
        try:
            return find_traceback(run.failures.get(test, ""), where=test)
        except InputError:
            continue
    return None


def _candidates(
    req: FixRequest, repo: GitRepo, wt: Worktree, suspects: list[Suspect], cause: RootCause, tb: ParsedTraceback | None
) -> list[Candidate]:
    out = list(revert_candidates(repo, suspects))
    if req.llm is not None and suspects:
        out += req.llm.candidates(wt.path, suspects, tb)
    out += template_candidates(wt.path, suspects, cause)
    return out


def fix(req: FixRequest, *, clock: Clock | None = None) -> FixReport:
    """Run the whole pipeline; the user's work tree and branches are left as they were."""
    clock = clock or MonotonicClock()
    start = clock.monotonic()
    repo = GitRepo(req.repo)
    repo.ensure_clean()
    if not req.test_command.strip():
        raise InputError("the test command is empty", where="--test")
    fix_id = req.fix_id or uuid.uuid4().hex[:8]
    if repo.branch_exists(f"novacron/fix-{fix_id}"):
        raise InputError(f"branch novacron/fix-{fix_id} already exists", where="--id")
    wt = repo.worktree()
    cov = Path(tempfile.mkdtemp(prefix="novacron-cov-")) / ".coverage"
    try:
        baseline = _baseline(req, wt, cov)
        tb = _traceback_of(req, baseline)
        base: dict[str, Any] = {
            "repo": str(repo.root),
            "base": repo.head(),
            "isolation": network_isolation(),
            "tests_failing_before": tuple(sorted(baseline.failed)),
            "tests_passing_before": len(baseline.passed),
        }
        if not baseline.failed and req.log_text is not None:
            note = "no test fails: the tests do not reproduce the crash in the log (add a test that does)"
            return FixReport(
                **base,
                id=fix_id,
                fixed=False,
                root_cause=classify(tb).value if tb else "unknown",
                exception=tb.exc_type if tb else "",
                message=tb.message if tb else "",
                suspects=(),
                candidates_tried=0,
                duration_s=clock.monotonic() - start,
                notes=(note,),
            )
        if not baseline.failed:
            from novacron.codegen.security import security_fix  # noqa: PLC0415 - needs bandit only here

            return security_fix(req, repo, wt, baseline, fix_id, base, lambda: clock.monotonic() - start)
        cause = classify(tb) if tb is not None else RootCause.UNKNOWN
        suspects = localise(baseline, tb, wt.path)
        validator = Validator(wt.path, req.test_command, baseline, req.limits, req.test_timeout_s)
        found: Validation | None = None
        for candidate in _candidates(req, repo, wt, suspects, cause, tb):
            if validator.tried >= req.max_candidates or clock.monotonic() - start > req.time_budget_s:
                break
            verdict = validator.validate(candidate)
            if verdict.plausible:
                found = verdict
                break
        common: dict[str, Any] = {
            **base,
            "id": fix_id,
            "root_cause": cause.value,
            "exception": tb.exc_type if tb else "",
            "message": tb.message if tb else "",
            "suspects": tuple(
                {"file": s.file, "line": s.line, "score": round(s.score, 3), "why": s.why} for s in suspects
            ),
        }
        if found is None:
            return FixReport(
                **common,
                fixed=False,
                candidates_tried=validator.tried,
                duration_s=clock.monotonic() - start,
                notes=("no candidate made the failing tests pass without breaking a passing one",),
            )
        return finish_fix(req, wt, validator, found, baseline, common, lambda: clock.monotonic() - start)
    finally:
        wt.remove()
        shutil.rmtree(cov.parent, ignore_errors=True)
