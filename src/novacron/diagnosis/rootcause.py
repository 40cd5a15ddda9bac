"""Root-cause ranking over the dependency graph.

When a target fails while things it depends on are also failing, the deepest failing
dependency is the likelier cause: restarting a healthy service whose database is down
heals nothing. Candidates are ranked by how many of the failing targets they explain
(their failing transitive dependents), then by depth.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass

__all__ = ["Cause", "dependents", "rank_root_causes"]


@dataclass(frozen=True, slots=True)
class Cause:
    """A candidate root cause and why."""

    target: str
    score: float
    reason: str


def _upstream(target: str, graph: Mapping[str, Sequence[str]]) -> set[str]:
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
    return {t for t in graph if target in _upstream(t, graph)}


def rank_root_causes(target: str, graph: Mapping[str, Sequence[str]], failing: Set[str]) -> list[Cause]:
    """Rank the failing target itself and its failing upstreams as causes, best first."""
    candidates = [u for u in _upstream(target, graph) if u in failing]
    causes = []
    for cand in [target, *candidates]:
        explained = len(dependents(cand, graph) & failing)
        failing_up = _upstream(cand, graph) & failing
        if failing_up:
            reason = f"{cand} fails, but so do its dependencies {sorted(failing_up)}"
            score = 0.1 * (1 + explained)
        elif cand == target:
            reason = f"{cand} fails while all its dependencies are healthy: a local fault"
            score = 1.0 + explained
        else:
            reason = f"{cand} fails with healthy dependencies and explains {explained} failing dependent(s)"
            score = 1.0 + explained
        causes.append(Cause(cand, score, reason))
    return sorted(causes, key=lambda c: (-c.score, c.target))
