"""Root-cause ranking over the dependency graph.

When a target fails while things it depends on are also failing, the deepest failing
dependency is the likelier cause: restarting a healthy service whose database is down
heals nothing. Candidates are ranked by how many of the failing targets they explain
(their failing transitive dependents), then by depth. Two more signals move the ranking
when they are known: the time order of each target's first failing observation (an
upstream that failed first is the likelier cause; one that failed well after the target
is not) and what the target's crash says about itself (a crash classified as local —
out of memory, port in use, a missing file — is the target's own fault even when an
upstream fails too; "connection refused" points upstream).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Literal

__all__ = ["Cause", "CrashHint", "dependents", "rank_root_causes", "upstreams"]

CrashHint = Literal["local", "dependency", "none"]
_LATE_S = 2.0  # an upstream whose first failure came this much after the target's is not its cause


@dataclass(frozen=True, slots=True)
class Cause:
    """A candidate root cause and why."""

    target: str
    score: float
    reason: str


def upstreams(target: str, graph: Mapping[str, Sequence[str]]) -> set[str]:
    """Every target ``target`` depends on, directly or transitively."""
    seen: set[str] = set()
    stack = list(graph.get(target, ()))
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(graph.get(node, ()))
    return seen


def dependents(target: str, graph: Mapping[str, Sequence[str]]) -> set[str]:
    """Every target that depends on ``target``, directly or transitively."""
    return {t for t in graph if target in upstreams(t, graph)}


def rank_root_causes(
    target: str,
    graph: Mapping[str, Sequence[str]],
    failing: Set[str],
    *,
    first_failed: Mapping[str, float] | None = None,
    crash: CrashHint = "none",
    starting: Set[str] = frozenset(),
) -> list[Cause]:
    """Rank the failing target itself and its failing upstreams as causes, best first.

    ``first_failed`` maps targets to the time of their first failing observation;
    ``crash`` is what the target's own crash suggests. ``starting``: the failing targets
    that are not healthy only because they are still within their start timeout; they
    rank as failing ones do, but the reasons say they are starting.
    """
    candidates = [u for u in upstreams(target, graph) if u in failing]
    causes = []
    for cand in [target, *candidates]:
        explained = len(dependents(cand, graph) & failing)
        failing_up = upstreams(cand, graph) & failing
        state = _state(cand, starting)
        if failing_up:
            reason = f"{cand} {state}, but {_dependencies(failing_up, starting)}"
            score = 0.1 * (1 + explained)
        elif cand == target:
            reason = f"{cand} {state} while all its dependencies are healthy: a local fault"
            score = 1.0 + explained
        else:
            reason = f"{cand} {state} with healthy dependencies and explains {explained} failing dependent(s)"
            score = 1.0 + explained
        score, reason = _weigh(cand, target, score, reason, first_failed or {}, crash)
        causes.append(Cause(cand, score, reason))
    return sorted(causes, key=lambda c: (-c.score, c.target))


def _state(name: str, starting: Set[str]) -> str:
    return "is still starting (not yet healthy since its start)" if name in starting else "fails"


def _dependencies(deps: Set[str], starting: Set[str]) -> str:
    """The clause naming a candidate's unhealthy dependencies: those failing, then those still starting."""
    down, up = sorted(deps - starting), sorted(deps & starting)
    clauses = [f"so do its dependencies {down}"] if down else []
    if up:
        clauses.append(f"its dependencies {up} are still starting (not yet healthy since their start)")
    return ", and ".join(clauses)


def _weigh(
    cand: str, target: str, score: float, reason: str, first_failed: Mapping[str, float], crash: CrashHint
) -> tuple[float, str]:
    """Adjust one candidate's score by time order and the target's crash class."""
    if cand == target:
        if crash == "local":
            return score + 10.0, f"{reason}; its crash is its own (local cause)"
        return score, reason
    if crash == "local":
        return score, reason
    if crash == "dependency":
        score, reason = score + 1.0, f"{reason}; {target} reports its dependency refused"
    mine, theirs = first_failed.get(target), first_failed.get(cand)
    if mine is not None and theirs is not None:
        if theirs <= mine:
            return score + 0.5, f"{reason}; it failed first ({mine - theirs:.2f}s before {target})"
        if theirs - mine > _LATE_S:
            return 0.05, f"{reason}; but it failed {theirs - mine:.1f}s after {target}"  # below any own score
    return score, reason
