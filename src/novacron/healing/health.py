"""Per-replica health from observations: the source of faults and of verification.

A replica is healthy when its process is alive and every check source has fewer
consecutive failures than its threshold, and every one of its checks has passed at least
once since it started. Transitions into failure produce a :class:`~novacron.model.Fault`
(crash, hang, unhealthy, heartbeat lost, start failed); transitions back let waiters
(the executor's verification) proceed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from novacron.clock import Clock
from novacron.model import Fault, FaultId, FaultKind, Health, Observation, TargetId

__all__ = ["VERIFY_ROUNDS", "HealthTracker", "ReplicaHealth"]

_ids = itertools.count(1)
VERIFY_ROUNDS = 2  # probe rounds (interval + timeout) a verification allows at least
_ANSWERS_KEPT = 16  # recent healthy answer times per replica (a fault's latency trend)


@dataclass
class ReplicaHealth:
    """What is known about one replica."""

    thresholds: dict[str, int]
    start_timeout_s: float
    min_uptime_s: float = 0.0  # without checks: how long the process must run to be proven
    alive: bool = False
    started_at: float = 0.0
    ever_healthy: bool = False
    failing: dict[str, int] = field(default_factory=dict)
    first_fail: dict[str, float] = field(default_factory=dict)
    passed: set[str] = field(default_factory=set)  # sources that answered well since the start
    failures: dict[str, str] = field(default_factory=dict)  # source → its latest failure since the start
    crashes: int = 0
    detail: str = ""  # why the process is not running (it could not start, it was found dead)
    faulted: bool = False
    answers: deque[float] = field(default_factory=lambda: deque(maxlen=_ANSWERS_KEPT))

    @property
    def checks_pass(self) -> bool:
        """No source at or over its failure threshold."""
        return all(self.failing.get(s, 0) < n for s, n in self.thresholds.items())

    @property
    def healthy(self) -> bool:
        """Alive, passing, and proven since the last start."""
        return self.alive and self.ever_healthy and self.checks_pass

    def blocking(self) -> list[str]:
        """What keeps the replica from being healthy now, per check, as seen since its last start.

        Never a failure from before the start: a check that has not answered since then
        says so, rather than repeating what it said about the process before.
        """
        if not self.alive:
            return [self.detail or "not running"]
        if not self.thresholds and not self.ever_healthy:
            return [f"no checks: running less than its min_uptime_s ({self.min_uptime_s:g}s) since its start"]
        out = []
        for source in sorted(self.thresholds):
            if self.failing.get(source, 0) < self.thresholds[source] and source in self.passed:
                continue
            if source in self.failures:
                out.append(f"{source}: {self.failures[source] or 'failed'}")
            else:
                out.append(f"{source}: no result since the start")
        return out or ["unproven"]


class HealthTracker:
    """Turns observations and process events into health, faults and recoveries."""

    def __init__(
        self,
        clock: Clock,
        *,
        on_fault: Callable[[Fault], object],
        on_recovered: Callable[[TargetId], None],
    ) -> None:
        self._clock = clock
        self._on_fault = on_fault
        self._on_recovered = on_recovered
        self._replicas: dict[str, dict[int, ReplicaHealth]] = {}
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._rounds: dict[str, float] = {}  # target → its slowest probe's interval + timeout
        # Told when a replica is first proven healthy after a start (target, replica).
        self.on_proven: Callable[[str, int], None] = lambda _target, _replica: None

    # -- configuration -----------------------------------------------------------------
    def configure(
        self,
        target: str,
        replica: int,
        thresholds: dict[str, int],
        start_timeout_s: float,
        *,
        probe_round_s: float = 0.0,
        min_uptime_s: float = 0.0,
    ) -> None:
        """Declare a replica and its check sources (source → consecutive failures allowed).

        ``probe_round_s``: the slowest of its probes' interval plus timeout; verification
        waits at least :data:`VERIFY_ROUNDS` of those (:meth:`verify_window`).
        ``min_uptime_s``: without checks, the replica is proven once its process has run
        this long (a process that dies a moment after its start must not verify a repair).
        """
        rep = ReplicaHealth({}, start_timeout_s)
        self._replicas.setdefault(target, {})[replica] = rep
        round_s = _settle_checks(rep, thresholds, start_timeout_s, probe_round_s, min_uptime_s)
        self._rounds[target] = max(self._rounds.get(target, 0.0), round_s)

    def reconfigure(
        self,
        target: str,
        replica: int,
        thresholds: dict[str, int],
        start_timeout_s: float,
        *,
        probe_round_s: float = 0.0,
        min_uptime_s: float = 0.0,
    ) -> None:
        """New check sources for a replica that runs on (a reloaded spec): what it proved so far stands.

        Only what is known of sources that are gone is dropped; a new source counts its failures from now.
        """
        rep = self._replicas[target][replica]
        self._rounds[target] = _settle_checks(rep, thresholds, start_timeout_s, probe_round_s, min_uptime_s)
        for per_source in (rep.failing, rep.first_fail, rep.failures):
            for source in [s for s in per_source if s not in thresholds]:
                del per_source[source]
        rep.passed &= set(thresholds)
        self._notify(target)

    def verify_window(self, target: str, policy_s: float) -> float:
        """How long a repair of ``target`` may take to show healthy: the policy's window, or longer.

        A target probed every 30 s, or whose probes may take their whole timeout on a
        loaded host, cannot show healthy within a fixed window shorter than its probes;
        a verification that never saw a probe would fail a repair that worked.
        """
        return max(policy_s, VERIFY_ROUNDS * self._rounds.get(target, 0.0))

    def remove(self, target: str, replica: int) -> None:
        """Forget a replica (scaled in)."""
        self._replicas.get(target, {}).pop(replica, None)
        self._notify(target)

    def replicas(self, target: str) -> dict[int, ReplicaHealth]:
        """The replicas of ``target``."""
        return self._replicas.get(target, {})

    # -- inputs ------------------------------------------------------------------------
    def process_started(self, target: str, replica: int) -> None:
        """A replica's process was (re)started: it must prove itself healthy again."""
        rep = self._replicas[target][replica]
        rep.alive, rep.started_at, rep.ever_healthy, rep.faulted = True, self._clock.monotonic(), False, False
        rep.detail = ""
        rep.failing.clear()
        rep.first_fail.clear()
        rep.failures.clear()
        rep.passed.clear()
        if not rep.thresholds and rep.min_uptime_s <= 0:  # nothing to prove: alive is healthy
            rep.ever_healthy = True
        self._notify(target)

    def adopt(self, target: str, replica: int) -> None:
        """A target that exists without us (a remote endpoint taken over from another controller).

        It needs no start to prove itself: failing checks from the first probe on are faults.
        """
        rep = self._replicas[target][replica]
        rep.alive, rep.started_at, rep.ever_healthy, rep.faulted = True, self._clock.monotonic(), True, False
        rep.detail = ""
        rep.failing.clear()
        rep.first_fail.clear()
        rep.failures.clear()
        self._notify(target)

    def rearm(self, target: str) -> None:
        """Let ``target``'s next failing check raise a fault again, though it never recovered.

        A fault is raised once per failure; when the work it started died (a healer that
        failed on a store error), the target failing on is the signal to take it up again.
        """
        for rep in self._replicas.get(target, {}).values():
            rep.faulted = False

    def process_exited(self, target: str, replica: int, code: int | None, *, expected: bool) -> None:
        """A replica's process exited; unexpected exits are faults."""
        rep = self._replicas.get(target, {}).get(replica)
        if rep is None:
            return
        was_healthy = rep.ever_healthy
        rep.alive = False
        if not expected:
            rep.crashes += 1
            kind = FaultKind.CRASH if was_healthy else FaultKind.START_FAILED
            self._fault(target, replica, rep, kind, self._clock.now(), {"exit_code": code})
        self._notify(target)

    def process_missing(self, target: str, replica: int, detail: str) -> None:
        """A replica that should run was found dead without an exit being seen: a crash."""
        rep = self._replicas.get(target, {}).get(replica)
        if rep is None:
            return
        rep.alive, rep.ever_healthy, rep.detail = False, False, detail
        rep.crashes += 1
        evidence = {"detail": detail, "found_at_start": True}
        self._fault(target, replica, rep, FaultKind.CRASH, self._clock.now(), evidence)
        self._notify(target)

    def spawn_failed(self, target: str, replica: int, error: str) -> None:
        """The replica could not even be started: a start failure."""
        rep = self._replicas.get(target, {}).get(replica)
        if rep is None or rep.faulted:
            return
        rep.alive, rep.ever_healthy, rep.detail = False, False, error
        self._fault(target, replica, rep, FaultKind.START_FAILED, self._clock.now(), {"detail": error})
        self._notify(target)

    def observe(self, obs: Observation) -> None:
        """Fold one probe/heartbeat observation into the replica's health."""
        rep = self._replicas.get(obs.target, {}).get(obs.replica)
        if rep is None or obs.healthy is None or not rep.alive:
            return
        before = rep.healthy
        if obs.healthy:
            self._passed(obs, rep)
        else:
            self._failed(obs, rep)
        if rep.healthy != before:
            self._notify(obs.target)
            if rep.healthy and self.is_healthy(obs.target):
                self._on_recovered(obs.target)

    def _passed(self, obs: Observation, rep: ReplicaHealth) -> None:
        if obs.latency_s is not None:
            rep.answers.append(obs.latency_s)
        rep.failing[obs.source] = 0
        rep.first_fail.pop(obs.source, None)
        rep.failures.pop(obs.source, None)
        rep.passed.add(obs.source)
        # Proven only when every check has answered well since the start: one passing
        # heartbeat must not vouch for an HTTP check that has only failed so far.
        if rep.checks_pass and rep.passed.issuperset(rep.thresholds):
            proven_now = not rep.ever_healthy
            rep.ever_healthy = True
            rep.faulted = False
            if proven_now:
                self.on_proven(str(obs.target), obs.replica)

    def _failed(self, obs: Observation, rep: ReplicaHealth) -> None:
        rep.failing[obs.source] = rep.failing.get(obs.source, 0) + 1
        rep.first_fail.setdefault(obs.source, obs.time - (obs.latency_s or 0.0))
        rep.failures[obs.source] = obs.detail
        threshold = rep.thresholds.get(obs.source, 1)
        if obs.suspected:  # an adaptive timeout needs a confirming failure behind it
            threshold = max(threshold, 2)
        if rep.ever_healthy and rep.failing[obs.source] >= threshold and not rep.faulted:
            kind = _kind_of(obs)
            evidence = {
                "source": obs.source,
                "detail": obs.detail,
                "consecutive_failures": rep.failing[obs.source],
            }
            self._fault(obs.target, obs.replica, rep, kind, rep.first_fail[obs.source], evidence)

    def check_start_timeouts(self) -> None:
        """Prove replicas without checks that have run their minimum uptime; raise START_FAILED
        for replicas alive but never healthy past their start timeout."""
        now = self._clock.monotonic()
        for target, reps in self._replicas.items():
            for index, rep in reps.items():
                self._prove_uptime(target, index, rep, now)
                overdue = now - rep.started_at > rep.start_timeout_s
                if rep.alive and not rep.ever_healthy and overdue and not rep.faulted:
                    evidence = {"start_timeout_s": rep.start_timeout_s, "detail": "; ".join(rep.blocking())}
                    self._fault(target, index, rep, FaultKind.START_FAILED, self._clock.now(), evidence)

    def _prove_uptime(self, target: str, replica: int, rep: ReplicaHealth, now: float) -> None:
        """A replica without checks is proven healthy once alive for its minimum uptime."""
        if rep.thresholds or rep.ever_healthy or not rep.alive or now - rep.started_at < rep.min_uptime_s:
            return
        rep.ever_healthy, rep.faulted = True, False
        self.on_proven(target, replica)
        self._notify(target)
        if self.is_healthy(target):
            self._on_recovered(TargetId(target))

    # -- queries -----------------------------------------------------------------------
    def is_healthy(self, target: str, replicas: Iterable[int] | None = None) -> bool:
        """Whether the selected (default: all) replicas are healthy."""
        reps = self._replicas.get(target, {})
        chosen = reps.keys() if replicas is None else replicas
        return bool(reps) and all(i in reps and reps[i].healthy for i in chosen)

    def health(self, target: str) -> Health:
        """A one-word summary for status displays."""
        reps = self._replicas.get(target, {}).values()
        if not reps:
            return Health.UNKNOWN
        if all(r.healthy for r in reps):
            return Health.HEALTHY
        if any(r.alive and not r.ever_healthy and not r.faulted for r in reps):
            return Health.STARTING
        if not any(r.alive for r in reps):
            return Health.STOPPED
        return Health.UNHEALTHY

    def answer_times(self, target: str) -> list[float]:
        """The recent healthy answer times (seconds, oldest first) of the target's worst replica."""
        reps = list(self._replicas.get(target, {}).values())
        if not reps:
            return []
        worst = next((r for r in reps if not r.healthy), reps[0])
        return list(worst.answers)

    def crash_count(self, target: str) -> int:
        """Unexpected exits seen for the target so far."""
        return sum(r.crashes for r in self._replicas.get(target, {}).values())

    async def wait_healthy(self, target: str, replicas: Iterable[int] | None, timeout: float) -> tuple[bool, str]:
        """Wait until the replicas are healthy; fail early on a new crash or start failure."""
        chosen = None if replicas is None else list(replicas)
        crashes = self.crash_count(target)
        deadline = self._clock.monotonic() + timeout
        event = asyncio.Event()
        waiters = self._waiters.setdefault(target, set())
        waiters.add(event)
        try:
            while True:
                event.clear()  # cleared before the checks, so no change can slip between them
                verdict = self._verdict(target, chosen, crashes)
                if verdict is not None:
                    return verdict
                remaining = deadline - self._clock.monotonic()
                if remaining <= 0:
                    return False, f"not healthy within {timeout:g}s: {self._detail(target, chosen)}"
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await event.wait()
        finally:
            waiters.discard(event)

    def _verdict(self, target: str, chosen: list[int] | None, crashes: int) -> tuple[bool, str] | None:
        if self.is_healthy(target, chosen):
            return True, "healthy again"
        if self.crash_count(target) > crashes:
            return False, "the process exited again during verification"
        if any(r.faulted and not r.ever_healthy for r in self._selected(target, chosen)):
            return False, "did not become healthy within its start timeout"
        return None

    def _selected(self, target: str, chosen: list[int] | None) -> list[ReplicaHealth]:
        reps = self._replicas.get(target, {})
        return [reps[i] for i in (reps if chosen is None else chosen) if i in reps]

    def _detail(self, target: str, chosen: list[int] | None) -> str:
        """Why the selected replicas are not healthy: each unhealthy one's blocking checks."""
        reps = self._selected(target, chosen)
        bad = {why for r in reps if not r.healthy for why in r.blocking()}
        return "; ".join(sorted(bad)) or ("no replicas" if not reps else "healthy")

    def _fault(
        self,
        target: str,
        replica: int,
        rep: ReplicaHealth,
        kind: FaultKind,
        since: float,
        evidence: dict[str, object],
    ) -> None:
        rep.faulted = True
        fault = Fault(
            id=FaultId(f"flt-{next(_ids):06d}-{int(self._clock.now() * 1000) % 10**9}"),
            target=TargetId(target),
            kind=kind,
            detected_at=self._clock.now(),
            since=min(since, self._clock.now()),
            evidence={"replica": replica, **evidence},
        )
        self._on_fault(fault)

    def _notify(self, target: str) -> None:
        for event in self._waiters.get(target, ()):
            event.set()


def _settle_checks(
    rep: ReplicaHealth, thresholds: dict[str, int], start_timeout_s: float, probe_round_s: float, min_uptime_s: float
) -> float:
    """Give ``rep`` its check sources and start rules; the least time a verification of it must allow.

    The minimum uptime proves only a replica without checks, and a verification waits long
    enough to see it proved at a housekeeping turn.
    """
    rep.thresholds, rep.start_timeout_s = dict(thresholds), start_timeout_s
    rep.min_uptime_s = 0.0 if thresholds else min_uptime_s
    return max(probe_round_s, rep.min_uptime_s)


def _kind_of(obs: Observation) -> FaultKind:
    if obs.source == "heartbeat":
        return FaultKind.HEARTBEAT_LOST
    if obs.detail.startswith("timeout"):
        return FaultKind.HANG
    return FaultKind.UNHEALTHY
