"""``novacron bench bugfix``: the fixer on the shipped corpus, judged by held-back tests.

For each program: materialise it as a git repository, run the fixer with the visible
tests, then check the fix branch against the held-back tests. A patch that passes the
visible tests but fails the held-back ones is *plausible but wrong* (overfitting).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from novacron.benchmarks.bugfix_corpus import CorpusBug, load_corpus, materialise
from novacron.clock import MonotonicClock
from novacron.codegen import FixRequest, SandboxLimits, fix
from novacron.codegen.gitrepo import GIT
from novacron.codegen.testrun import is_test_file
from novacron.errors import NovacronError

__all__ = ["run_bugfix_bench"]


def _command() -> str:
    # Third-party pytest plugins of this environment are not part of the programs under test.
    return f'PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 "{sys.executable}" -m pytest -q tests'


def _heldout_passes(repo: Path, branch: str, bug: CorpusBug) -> bool:
    check = repo.parent / f"{bug.name}-heldout"
    subprocess.run([GIT, "worktree", "add", "-q", str(check), branch], cwd=repo, check=True, capture_output=True)
    (check / "heldout").mkdir()
    (check / "heldout" / "test_heldout.py").write_text(bug.heldout, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "heldout", "tests"],
        cwd=check,
        capture_output=True,
        timeout=120,
        check=False,
        env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PATH": "/usr/bin:/bin"},
    )
    return proc.returncode == 0


def _edits_tests(repo: Path, branch: str) -> bool:
    out = subprocess.run(
        [GIT, "diff", "--name-status", f"{branch}~1", branch], cwd=repo, capture_output=True, text=True, check=True
    ).stdout
    return any(
        status != "A" and is_test_file(path) for status, path in (line.split("\t", 1) for line in out.splitlines())
    )


def _one(bug: CorpusBug, work: Path, budget_s: float, clock: MonotonicClock) -> dict[str, Any]:
    repo = materialise(bug, work)
    start = clock.monotonic()
    try:
        report = fix(
            FixRequest(
                repo=repo,
                test_command=_command(),
                limits=SandboxLimits(timeout_s=60, cpu_s=120),
                test_timeout_s=3.0,
                time_budget_s=budget_s,
                fix_id=bug.name.replace("_", "-"),
            ),
            clock=clock,
        )
    except NovacronError as exc:
        return {"name": bug.name, "class": bug.bug_class, "result": "error", "detail": str(exc), "s": 0.0}
    seconds = clock.monotonic() - start
    row: dict[str, Any] = {
        "name": bug.name,
        "class": bug.bug_class,
        "classified": report.root_cause,
        "s": round(seconds, 2),
        "tried": report.candidates_tried,
    }
    if not report.fixed or report.branch is None:
        return {**row, "result": "not_fixed"}
    row["strategy"] = report.strategy
    row["edits_tests"] = _edits_tests(repo, report.branch)
    row["result"] = "fixed" if _heldout_passes(repo, report.branch, bug) else "plausible_but_wrong"
    return row


def run_bugfix_bench(
    *, only: list[str] | None = None, limit: int | None = None, budget_s: float = 300.0
) -> dict[str, Any]:
    """Run the fixer over the corpus; one JSON-ready summary with a row per program."""
    bugs = load_corpus(only)[: limit or None]
    clock = MonotonicClock()
    with tempfile.TemporaryDirectory(prefix="novacron-bugfix-") as tmp:
        rows = [_one(bug, Path(tmp), budget_s, clock) for bug in bugs]
    by_class: dict[str, dict[str, int]] = defaultdict(lambda: {"bugs": 0, "fixed": 0, "plausible_but_wrong": 0})
    for r in rows:
        c = by_class[r["class"]]
        c["bugs"] += 1
        if r["result"] in ("fixed", "plausible_but_wrong"):
            c[r["result"]] += 1
    fixed = sum(1 for r in rows if r["result"] == "fixed")
    return {
        "bugs": len(rows),
        "fixed": fixed,
        "fixed_share": round(fixed / len(rows), 3) if rows else 0.0,
        "plausible_but_wrong": sum(1 for r in rows if r["result"] == "plausible_but_wrong"),
        "not_fixed": sum(1 for r in rows if r["result"] == "not_fixed"),
        "errors": sum(1 for r in rows if r["result"] == "error"),
        "patches_editing_tests": sum(1 for r in rows if r.get("edits_tests")),
        "median_s": round(statistics.median(r["s"] for r in rows), 2) if rows else 0.0,
        "by_class": dict(sorted(by_class.items())),
        "rows": rows,
    }
