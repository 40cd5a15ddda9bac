"""Circuit breaker: healthy → degraded → failed → recovering, per service, from probe results.

Each probe observation updates a sliding window (error ratio, latency). Two failed probes
in a row, or an error ratio at or over ``open_ratio``, open the circuit (``failed``):
with the default one-second probes the breaker opens within two probe intervals. A
passing probe after that is ``recovering`` (half-open: the replica's own probes, which
reach it directly, are the trial requests); ``close_after`` passing probes in a row close
it. Open circuits raise the cascading-failure risk of everything that depends on the
service. With a load-balancer frontend there is one breaker per replica and its actions
are applied: the replica's server goes into maintenance (traffic to the others or the
fallback) and comes back when the circuit closes. Without one they are proposed for a human.
"""

from __future__ import annotations

import enum
import statistics
from collections import deque
from dataclasses import dataclass, field

from novacron.agents._util import output, propose
from novacron.agents.base import AgentContext, AgentOutput, Finding, Proposal
from novacron.model import ActionKind, Observation

__all__ = ["Breaker", "CircuitAgent", "CircuitState"]


class CircuitState(enum.StrEnum):
    """The breaker's states."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    FAILED = "failed"
    RECOVERING = "recovering"


@dataclass
class Breaker:
    """The state machine of one service."""

    window: int = 20
    degraded_ratio: float = 0.2
    open_ratio: float = 0.5
    open_after: int = 2
    close_after: int = 3
    latency_slo_s: float | None = None
    state: CircuitState = CircuitState.HEALTHY
    results: deque[bool] = field(default_factory=lambda: deque(maxlen=20))
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=20))
    streak_fail: int = 0
    streak_ok: int = 0
    streak_started: float | None = None  # time of the first failure of the current run of failures
    opened_at: float | None = None
    outages: list[float] = field(default_factory=list)
    last_time: float = float("-inf")

    @property
    def error_ratio(self) -> float:
        """Failed share of the window."""
        return 1.0 - sum(self.results) / len(self.results) if self.results else 0.0

    def observe(self, ok: bool, latency_s: float | None, t: float, *, decisive: bool = False) -> CircuitState:
        """One probe result; returns the new state. ``decisive``: a failure that needs no second look (a crash)."""
        self.last_time = t
        self.results.append(ok)
        if latency_s is not None:
            self.latencies.append(latency_s)
        if not ok and self.streak_fail == 0:
            self.streak_started = t
        self.streak_fail = 0 if ok else max(self.streak_fail + 1, self.open_after if decisive else 0)
        self.streak_ok = self.streak_ok + 1 if ok else 0
        if self.state in (CircuitState.FAILED, CircuitState.RECOVERING):
            if not ok:
                self.state = CircuitState.FAILED
            elif self.streak_ok >= self.close_after:
                self.state = CircuitState.HEALTHY
                if self.opened_at is not None:
                    self.outages.append(t - self.opened_at)
                self.opened_at = None
                self.results.clear()
            else:
                self.state = CircuitState.RECOVERING
            return self.state
        if self.streak_fail >= self.open_after or (len(self.results) >= 4 and self.error_ratio >= self.open_ratio):
            self.state, self.opened_at = CircuitState.FAILED, t
        elif self.error_ratio >= self.degraded_ratio or self._slow():
            self.state = CircuitState.DEGRADED
        else:
            self.state = CircuitState.HEALTHY
        return self.state

    def _slow(self) -> bool:
        if self.latency_slo_s is None or len(self.latencies) < 5:
            return False
        return statistics.quantiles(self.latencies, n=20)[-1] > self.latency_slo_s

    def recovery_estimate_s(self) -> float | None:
        """Median of this service's past outages, if any."""
        return statistics.median(self.outages) if self.outages else None


class CircuitAgent:
    """Keeps a breaker per service and proposes fallback routing for open circuits."""

    name = "circuit"
    interval_s = 1.0

    def __init__(self) -> None:
        self.breakers: dict[str, Breaker] = {}
        self._open_proposed: set[str] = set()

    def feed(self, target: str, obs: Observation) -> CircuitState:
        """Feed one probe observation (in time order)."""
        b = self.breakers.setdefault(target, Breaker())
        if obs.healthy is None or obs.time <= b.last_time:
            return b.state
        crashed = obs.source == "process" and not obs.healthy  # the process is gone: no second probe needed
        return b.observe(bool(obs.healthy), obs.latency_s, obs.time, decisive=crashed)

    def _failed(self, target: str) -> bool:
        """A service's circuit is open: its own breaker, or every replica's when it has a frontend."""
        if target in self.breakers:
            return self.breakers[target].state is CircuitState.FAILED
        own = [b for k, b in self.breakers.items() if _split(k)[0] == target]
        return bool(own) and all(b.state is CircuitState.FAILED for b in own)

    def cascade_risk(self, context: AgentContext) -> dict[str, float]:
        """Share of each service's (transitive) dependencies whose circuit is open."""
        deps = {t.name: set(t.depends_on) for t in context.spec.targets}
        risk: dict[str, float] = {}
        for name, direct in deps.items():
            seen: set[str] = set()
            stack = list(direct)
            while stack:
                d = stack.pop()
                if d not in seen:
                    seen.add(d)
                    stack += deps.get(d, set())
            failed = [d for d in seen if self._failed(d)]
            risk[name] = len(failed) / len(seen) if seen else 0.0
        return risk

    def run(self, context: AgentContext) -> AgentOutput:
        """Consume new probe results, then report states, cascading risk and routing proposals.

        A target with a load-balancer frontend gets one breaker per replica (its server),
        so one failed replica is taken out of rotation while the others serve.
        """
        fronted = {t.name for t in context.spec.targets if t.frontend is not None}
        for tspec in context.spec.targets:
            for obs in context.observations(tspec.name):
                if obs.source.startswith("probe") or obs.healthy is not None:
                    self.feed(_key(tspec.name, obs.replica) if tspec.name in fronted else tspec.name, obs)
        risk = self.cascade_risk(context)
        findings: list[Finding] = []
        proposals: list[Proposal] = []
        for key, b in sorted(self.breakers.items()):
            target, replica = _split(key)
            evidence = {
                "state": b.state.value,
                "error_ratio": round(b.error_ratio, 3),
                "cascade_risk": round(risk.get(target, 0.0), 3),
                "recovery_estimate_s": b.recovery_estimate_s(),
                "opened_at": b.opened_at,
                "first_failure_at": b.streak_started,
                **({} if replica is None else {"replica": replica}),
            }
            if b.state is not CircuitState.HEALTHY:
                findings.append(
                    Finding(
                        target,
                        f"circuit_{b.state.value}",
                        f"circuit {b.state.value} (error ratio {b.error_ratio:.0%})"
                        + ("" if replica is None else f" on replica {replica}"),
                        0.9 if b.state is CircuitState.FAILED else 0.6,
                        evidence,
                    )
                )
            proposals += self._routing(key, b)
        for target, r in risk.items():
            if r > 0:
                findings.append(
                    Finding(
                        target,
                        "cascade_risk",
                        f"{r:.0%} of its dependencies have open circuits",
                        r,
                        {"cascade_risk": r},
                    )
                )
        return output(
            self.name,
            context,
            findings,
            proposals,
            f"{sum(b.state is CircuitState.FAILED for b in self.breakers.values())} open circuit(s)",
        )

    def _routing(self, key: str, b: Breaker) -> list[Proposal]:
        target, replica = _split(key)
        where = {} if replica is None else {"replica": replica}
        if b.state is CircuitState.FAILED and key not in self._open_proposed:
            self._open_proposed.add(key)
            p = propose(
                self.name,
                ActionKind.OPEN_CIRCUIT,
                target,
                key=f"{key}/open/{b.opened_at}",
                reason=f"circuit open: error ratio {b.error_ratio:.0%}",
                rollback="close_circuit (routes traffic back)",
                params={"recovery_estimate_s": b.recovery_estimate_s(), **where},
            )
            return [p]
        if b.state is CircuitState.HEALTHY and key in self._open_proposed:
            self._open_proposed.discard(key)
            return [
                propose(
                    self.name,
                    ActionKind.CLOSE_CIRCUIT,
                    target,
                    key=f"{key}/close/{b.last_time}",
                    reason="service recovered"
                    + ("" if replica is None else f" (replica {replica}: half-open probes passed)"),
                    rollback="open_circuit",
                    params=where,
                )
            ]
        return []


def _key(target: str, replica: int) -> str:
    """The breaker of one replica of a fronted target."""
    return f"{target}#{replica}"


def _split(key: str) -> tuple[str, int | None]:
    target, sep, replica = key.partition("#")
    return (target, int(replica)) if sep else (target, None)
