"""The fixer's result: root cause, evidence, the patch, its risk and how to roll it back."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from novacron.model import RiskLevel

__all__ = ["FixReport", "assess_risk", "unified_diff"]


@dataclass(frozen=True, slots=True)
class FixReport:
    """Everything ``novacron fix`` found and did."""

    id: str
    repo: str
    base: str
    fixed: bool
    root_cause: str
    exception: str
    message: str
    suspects: tuple[Mapping[str, Any], ...]
    candidates_tried: int
    duration_s: float
    isolation: str
    tests_failing_before: tuple[str, ...]
    tests_passing_before: int
    strategy: str = ""
    description: str = ""
    branch: str | None = None
    commit: str | None = None
    diff: str = ""
    files: tuple[str, ...] = ()
    risk: str = ""
    risk_reasons: tuple[str, ...] = ()
    rollback: str = ""
    regression_test: str | None = None
    security: tuple[Mapping[str, Any], ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def unified_diff(path: str, old: str, new: str) -> str:
    """A git-style unified diff of one file."""
    return "".join(
        difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{path}", f"b/{path}")
    )


def assess_risk(diff: str, files: int, covered: float | None) -> tuple[RiskLevel, tuple[str, ...]]:
    """Risk from the size of the change, files touched and how much of it the tests cover."""
    changed = sum(1 for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---")))
    reasons = [f"{changed} changed line(s)", f"{files} file(s)"]
    if covered is not None:
        reasons.append(f"{covered:.0%} of the changed lines covered by tests")
    if changed > 30 or files > 3 or (covered is not None and covered < 0.5):
        return RiskLevel.HIGH, tuple(reasons)
    if changed > 6 or files > 1 or covered is None or covered < 1.0:
        return RiskLevel.MEDIUM, tuple(reasons)
    return RiskLevel.LOW, tuple(reasons)
