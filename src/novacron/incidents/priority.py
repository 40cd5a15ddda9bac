"""Incident priority P0-P4 from impact, as a pure, re-evaluable function.

Priority answers "how much attention does this need", so it is scored from impact, not
from the fault's kind: the share of the fleet affected, how many targets depend on the
affected one (transitively, over the fleet's ``depends_on`` graph), whether an SLO is
breached, and whether automation has already tried and failed. Callers re-run
:func:`assess` whenever any input changes (a new target joins the incident, a repair
fails, the SLO burn stops) and act on the new :class:`PriorityDecision`.

Handling per priority: P0 pages a human at once; P1 is repaired automatically and
watched (humans are notified, not paged); P2-P3 are repaired automatically; P4 is only
logged.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from novacron.errors import InputError
from novacron.model import Priority

__all__ = [
    "ImpactInput",
    "PriorityDecision",
    "PriorityPolicy",
    "assess",
    "transitive_dependents",
]


@dataclass(frozen=True, slots=True)
class ImpactInput:
    """What is known about an incident's impact right now.

    ``affected`` and ``fleet_size`` count targets; ``dependents`` is the number of targets
    that (transitively) depend on the affected ones (see :func:`transitive_dependents`).
    """

    affected: int
    fleet_size: int
    dependents: int = 0
    slo_breached: bool = False
    automation_failed: bool = False
    preventive: bool = False

    def __post_init__(self) -> None:
        if self.fleet_size < 1:
            raise InputError("must be at least 1", where="fleet_size")
        if not 0 <= self.affected <= self.fleet_size:
            raise InputError(f"must be between 0 and fleet_size ({self.fleet_size})", where="affected")
        if self.dependents < 0:
            raise InputError("must not be negative", where="dependents")

    @property
    def share(self) -> float:
        """Fraction of the fleet affected, in [0, 1]."""
        return self.affected / self.fleet_size


@dataclass(frozen=True, slots=True)
class PriorityPolicy:
    """Thresholds that turn impact into points; defaults suit a fleet of tens of targets.

    Points add up (0-10) and map to a priority: ≥8 → P0, ≥6 → P1, ≥4 → P2, ≥2 → P3,
    else P4. A failed automation adds points because a human is the next line of repair.
    """

    major_share: float = 0.5
    large_share: float = 0.25
    some_share: float = 0.1
    critical_dependents: int = 5
    some_dependents: int = 1
    slo_points: int = 3
    automation_failed_points: int = 3

    def share_points(self, share: float) -> int:
        """Points for the share of the fleet affected."""
        if share >= self.major_share:
            return 4
        if share >= self.large_share:
            return 3
        if share >= self.some_share:
            return 2
        return 1 if share > 0 else 0

    def dependent_points(self, dependents: int) -> int:
        """Points for the target's criticality in the dependency graph."""
        if dependents >= self.critical_dependents:
            return 2
        return 1 if dependents >= self.some_dependents else 0


_CUTS: tuple[tuple[int, Priority], ...] = (
    (8, Priority.P0),
    (6, Priority.P1),
    (4, Priority.P2),
    (2, Priority.P3),
)


@dataclass(frozen=True, slots=True)
class PriorityDecision:
    """A priority with the reasons that produced it and what it implies."""

    priority: Priority
    score: int
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def page(self) -> bool:
        """Page a human immediately (P0 only)."""
        return self.priority is Priority.P0

    @property
    def automate(self) -> bool:
        """Let automation repair it (P1-P3; P0 too, but with a human paged alongside)."""
        return self.priority <= Priority.P3

    @property
    def watch(self) -> bool:
        """Notify humans so they watch the automated repair (P0-P1)."""
        return self.priority <= Priority.P1

    @property
    def log_only(self) -> bool:
        """Only record it (P4)."""
        return self.priority is Priority.P4


def assess(impact: ImpactInput, policy: PriorityPolicy | None = None) -> PriorityDecision:
    """Score an incident's impact into a :class:`PriorityDecision`; pure and deterministic."""
    pol = policy or PriorityPolicy()
    reasons: list[str] = []
    score = pol.share_points(impact.share)
    reasons.append(f"{impact.affected}/{impact.fleet_size} targets affected ({impact.share:.0%})")
    dep = pol.dependent_points(impact.dependents)
    score += dep
    if impact.dependents:
        reasons.append(f"{impact.dependents} dependent target(s)")
    if impact.slo_breached:
        score += pol.slo_points
        reasons.append("SLO breached")
    if impact.automation_failed:
        score += pol.automation_failed_points
        reasons.append("automated repair failed")
    if impact.preventive and not impact.slo_breached:
        # Nothing is broken yet: a forecast never outranks a live outage of equal reach.
        score = min(score, 5)
        reasons.append("preventive (predicted, not yet failing)")
    score = min(score, 10)
    priority = next((p for cut, p in _CUTS if score >= cut), Priority.P4)
    return PriorityDecision(priority=priority, score=score, reasons=tuple(reasons))


def transitive_dependents(depends_on: Mapping[str, Iterable[str]], targets: Iterable[str]) -> set[str]:
    """Targets that depend, directly or through others, on any of ``targets``.

    ``depends_on`` maps each target to what it depends on (the fleet spec's edges); the
    result excludes the given targets themselves. Cycles are tolerated (visited once).
    """
    reverse: dict[str, set[str]] = {}
    for name, deps in depends_on.items():
        for dep in deps:
            reverse.setdefault(dep, set()).add(name)
    start = set(targets)
    seen: set[str] = set()
    queue = deque(start)
    while queue:
        node = queue.popleft()
        for parent in reverse.get(node, ()):
            if parent not in seen and parent not in start:
                seen.add(parent)
                queue.append(parent)
    return seen
