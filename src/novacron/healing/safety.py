"""The safety gate: every action passes here before anything is touched.

Rails, in the order they are checked: the global kill switch, the target's owner (a
repair that took the target over, such as a host failover, while it runs: the target's
other automated actions wait for it), flap quarantine, the per-target hourly rate limit,
the fleet-wide blast-radius cap, per-target exponential backoff with jitter, approval for
risky actions, and dry-run (decide and record, touch nothing). Automated actions face
every rail; an operator's manual action is itself the human decision, so it skips the
automation rails and only dry-run still applies, and so does the rollback of an action
that already passed the gate. Automated means the controller itself, a runbook
(``runbook:<name>``), an agent (``agent:<name>``), an experiment or a host failover
(``failover:<host>``).

With a :class:`~novacron.store.rails.RailRepository` the rails' state (quarantines,
rate-limit windows, flap counts, backoff) is written to the store as it changes and read
back on start, so a controller killed and restarted in a loop cannot reset it. The gate
keeps monotonic times in memory and wall-clock times in the store.
"""

from __future__ import annotations

import enum
import functools
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from novacron.clock import Clock
from novacron.errors import StoreError
from novacron.model import Action, ActionKind
from novacron.settings import Policy
from novacron.store.rails import BACKOFF, FLAP, QUARANTINE, RATE_LIMIT, RailRepository, RailRow
from novacron.telemetry import get_logger

__all__ = ["AUTOMATED_PREFIXES", "OWNER_RAIL", "Decision", "SafetyGate", "Verdict", "is_automated"]

_HOUR = 3600.0
OWNER_RAIL = "owner"  # the rail of a deferral to the actor that has taken a target's repair over
# traffic: routing changes (circuits, canary steps, rollbacks, drains) are not remediations.
# They face the kill switch, approval and dry-run, but never wait out or count towards a
# target's rate limit, backoff, quarantine or blast radius: a canary's rollback or a broken
# replica's circuit must not wait behind the healer's restarts, nor delay them.
_TRAFFIC = frozenset(
    {
        ActionKind.OPEN_CIRCUIT,
        ActionKind.CLOSE_CIRCUIT,
        ActionKind.REROUTE,
        ActionKind.DRAIN,
        ActionKind.UNDRAIN,
        ActionKind.PROMOTE,
    }
)
# An experiment's canary steps and rollbacks too, and a VM host's failover.
AUTOMATED_PREFIXES = ("runbook:", "agent:", "experiment:", "failover:")


def is_automated(actor: str) -> bool:
    """Whether ``actor`` is automation (the controller, a runbook, an agent, an experiment) rather than a person."""
    return actor == "controller" or actor.startswith(AUTOMATED_PREFIXES)


class Verdict(enum.StrEnum):
    """What the gate decided."""

    ALLOW = "allow"
    DEFER = "defer"  # not now: retry at ``retry_at``
    DENY = "deny"  # not automatically: a human must act
    DRY_RUN = "dry_run"
    APPROVAL = "approval"  # wait for a human's yes


@dataclass(frozen=True, slots=True)
class Decision:
    """The gate's answer, with the rail that produced it."""

    verdict: Verdict
    reason: str
    retry_at: float | None = None
    rail: str = ""


class SafetyGate:
    """Holds the rails' state and judges each action against the policy."""

    def __init__(
        self,
        policy: Policy,
        clock: Clock,
        *,
        fleet_size: int,
        seed: int | None = None,
        rails: RailRepository | None = None,
    ) -> None:
        self.policy = policy
        self._clock = clock
        self.fleet_size = fleet_size
        self._rng = random.Random(seed)
        self.enabled = True
        self._actions: dict[str, deque[float]] = {}
        self._attempts: dict[str, int] = {}
        self._not_before: dict[str, float] = {}
        self._incidents: dict[str, deque[float]] = {}
        self._quarantine: dict[str, float] = {}
        self._remediating: set[str] = set()
        self._owners: dict[str, str] = {}  # target → the actor that took its repair over
        self._rails = rails
        self._log = get_logger(component="safety")
        if rails is not None:
            for row in rails.rows():
                self._load(row)

    # -- persistence -------------------------------------------------------------------
    def _wall(self, mono: float) -> float:
        return self._clock.now() + (mono - self._clock.monotonic())

    def _mono(self, wall: float) -> float:
        return self._clock.monotonic() + (wall - self._clock.now())

    def _load(self, row: RailRow) -> None:
        """Take one stored rail back into memory (controller start)."""
        if row.rail == QUARANTINE and row.until is not None:
            self._quarantine[row.target] = self._mono(row.until)
        elif row.rail in (RATE_LIMIT, FLAP):
            logs = self._actions if row.rail == RATE_LIMIT else self._incidents
            logs[row.target] = deque(sorted(self._mono(float(at)) for at in row.data.get("at", [])))
        elif row.rail == BACKOFF:
            self._attempts[row.target] = int(row.data.get("attempts", 0))
            if row.until is not None:
                self._not_before[row.target] = self._mono(row.until)

    def _save_log(self, rail: str, target: str, log: deque[float]) -> None:
        if self._rails is not None:
            data = {"at": [round(self._wall(at), 3) for at in log]}
            self._persist(lambda r: r.put(target, rail, data=data, until=None, now=self._clock.now()))

    def _save_until(self, rail: str, target: str, until: float, **data: int) -> None:
        if self._rails is not None:
            wall = self._wall(until)
            self._persist(lambda r: r.put(target, rail, data=data, until=wall, now=self._clock.now()))

    def _drop(self, target: str, *rails: str) -> None:
        for rail in rails:
            self._persist(functools.partial(RailRepository.drop, target=target, rail=rail))

    def _persist(self, write: Callable[[RailRepository], None]) -> None:
        """Write a rail's change; a failing store leaves the rail in force in memory (it is never lifted)."""
        if self._rails is None:
            return
        try:
            write(self._rails)
        except StoreError as exc:
            self._log.warning("safety rail not persisted", error=str(exc))

    # -- decisions ---------------------------------------------------------------------
    def check(self, action: Action) -> Decision:
        """Judge ``action`` now."""
        # A rollback finishes a remediation that already passed the gate; holding it back
        # (backoff, rate limit) would leave the half-done change in place.
        # An agent's proposal that asks for approval goes straight to a human, who then
        # decides like for a manual action; other agent actions meet the controller's rails.
        if action.params.get("approval") == "required" and action.inverse_of is None:
            return Decision(
                Verdict.APPROVAL, f"{action.kind} proposed by {action.requested_by} needs approval", rail="approval"
            )
        if is_automated(action.requested_by) and action.inverse_of is None:
            rails = [self._kill_switch, self._owned, self._quarantined, self._rate_limit, self._blast_radius]
            if action.requested_by != self._owners.get(action.target):
                # The backoff spaces a target's own repeated repairs; an owner's remedy is not one of them.
                rails.append(self._backoff)
            if action.kind in _TRAFFIC:
                rails = [self._kill_switch]
            for rail in rails:
                decision = rail(action)
                if decision is not None:
                    return decision
            # Dry-run wins over approval: nothing will be touched, so no human is asked.
            if self.policy.dry_run:
                return Decision(Verdict.DRY_RUN, "dry run: decided and recorded, nothing touched", rail="dry_run")
            if self.policy.needs_approval(action.risk):
                return Decision(
                    Verdict.APPROVAL,
                    f"{action.risk.label}-risk {action.kind} needs approval",
                    rail="approval",
                )
        if self.policy.dry_run:
            return Decision(Verdict.DRY_RUN, "dry run: decided and recorded, nothing touched", rail="dry_run")
        return Decision(Verdict.ALLOW, "all rails passed")

    def _kill_switch(self, action: Action) -> Decision | None:
        if self.enabled:
            return None
        return Decision(Verdict.DENY, "autonomous healing is disabled (kill switch)", rail="kill_switch")

    def _owned(self, action: Action) -> Decision | None:
        owner = self._owners.get(action.target)
        if owner is None or action.requested_by == owner:
            return None
        return Decision(
            Verdict.DEFER,
            f"{action.target} is repaired by {owner}; waiting for its outcome",
            retry_at=self._clock.monotonic() + 0.25,
            rail=OWNER_RAIL,
        )

    def _quarantined(self, action: Action) -> Decision | None:
        until = self._quarantine.get(action.target, 0.0)
        if self._clock.monotonic() >= until:
            return None
        return Decision(Verdict.DENY, f"{action.target} is quarantined for flapping", rail="quarantine")

    def _rate_limit(self, action: Action) -> Decision | None:
        log = self._recent(self._actions, action.target, _HOUR)
        limit = self.policy.max_actions_per_target_per_hour
        if len(log) < limit:
            return None
        return Decision(Verdict.DENY, f"{action.target} reached {limit} actions in the last hour", rail="rate_limit")

    def _blast_radius(self, action: Action) -> Decision | None:
        if action.target in self._remediating or len(self._remediating) < self.blast_cap:
            return None
        return Decision(
            Verdict.DEFER,
            f"blast radius: {len(self._remediating)} of {self.fleet_size} targets already under remediation "
            f"(cap {self.blast_cap})",
            retry_at=self._clock.monotonic() + 0.25,
            rail="blast_radius",
        )

    def _backoff(self, action: Action) -> Decision | None:
        not_before = self._not_before.get(action.target, 0.0)
        now = self._clock.monotonic()
        if now >= not_before:
            return None
        return Decision(Verdict.DEFER, f"backing off {not_before - now:.2f}s", retry_at=not_before, rail="backoff")

    # -- state updates -----------------------------------------------------------------
    @property
    def blast_cap(self) -> int:
        """How many targets may be under remediation at once (at least one)."""
        return max(1, math.floor(self.policy.blast_radius * self.fleet_size + 1e-9))

    def acquire(self, target: str) -> bool:
        """Take a blast-radius slot for ``target``; False when the cap is reached."""
        if target in self._remediating:
            return True
        if len(self._remediating) >= self.blast_cap:
            return False
        self._remediating.add(target)
        return True

    def release(self, target: str) -> None:
        """Give a target's blast-radius slot back."""
        self._remediating.discard(target)

    def take_over(self, target: str, owner: str) -> None:
        """``owner`` repairs ``target`` from now on: every other automated action on it waits.

        The one place that decides who repairs a target while a repair bigger than the
        target's own ladder runs (a host failover moving the guest): the healer's steps
        are deferred here, not raced in the actuator. An action already applying ends
        first (the actuator runs one action per target at a time); the owner's own then
        finds the target as that one left it.
        """
        self._owners[target] = owner

    def hand_back(self, target: str, owner: str) -> None:
        """``owner`` is done with ``target`` (it has settled the target's incident)."""
        if self._owners.get(target) == owner:
            del self._owners[target]

    def owner_of(self, target: str) -> str | None:
        """The actor that has taken ``target``'s repair over, if any."""
        return self._owners.get(target)

    @property
    def remediating(self) -> frozenset[str]:
        """Targets currently holding a blast-radius slot."""
        return frozenset(self._remediating)

    def record_action(self, action: Action) -> None:
        """Count an applied automated action and schedule the target's next backoff."""
        if not is_automated(action.requested_by) or action.kind in _TRAFFIC:
            return
        now = self._clock.monotonic()
        log = self._recent(self._actions, action.target, _HOUR)
        log.append(now)
        attempt = self._attempts.get(action.target, 0)
        self._attempts[action.target] = attempt + 1
        self._not_before[action.target] = now + self.backoff_delay(attempt)
        self._save_log(RATE_LIMIT, action.target, log)
        self._save_until(BACKOFF, action.target, self._not_before[action.target], attempts=attempt + 1)

    def record_success(self, target: str) -> None:
        """A verified recovery resets the target's backoff."""
        if self._attempts.pop(target, None) is not None:
            self._drop(target, BACKOFF)
        self._not_before.pop(target, None)

    def backoff_delay(self, attempt: int) -> float:
        """Delay after the ``attempt``-th consecutive action (0-based): base·2^n, capped, jittered."""
        b = self.policy.backoff
        delay = min(b.cap_s, b.base_s * (2.0**attempt))
        return delay * (1.0 - b.jitter * self._rng.random())

    def record_incident(self, target: str) -> bool:
        """Count a new incident; True when it pushes the target into quarantine."""
        flap = self.policy.flap
        log = self._recent(self._incidents, target, flap.window_s)
        log.append(self._clock.monotonic())
        if len(log) < flap.threshold:
            self._save_log(FLAP, target, log)
            return False
        self._quarantine[target] = self._clock.monotonic() + flap.quarantine_s
        log.clear()
        self._save_until(QUARANTINE, target, self._quarantine[target])
        self._drop(target, FLAP)
        return True

    def lift_quarantine(self, target: str) -> bool:
        """End a target's quarantine now (a human's call); False when it was not quarantined."""
        was = self.is_quarantined(target)
        self._quarantine.pop(target, None)
        self._incidents.pop(target, None)  # a fresh count: the incidents before the lift are forgiven
        self._drop(target, QUARANTINE, FLAP)
        return was

    def forget(self, target: str) -> None:
        """Drop every rail's state of a target removed from the spec: one added again under its name starts afresh."""
        for state in (self._actions, self._attempts, self._not_before, self._incidents, self._quarantine):
            state.pop(target, None)
        self._drop(target, RATE_LIMIT, BACKOFF, FLAP, QUARANTINE)

    def is_quarantined(self, target: str) -> bool:
        """Whether the target is in flap quarantine now."""
        return self._clock.monotonic() < self._quarantine.get(target, 0.0)

    def quarantined_until(self, target: str) -> float | None:
        """When the target's quarantine ends (wall-clock seconds), or None if it is not quarantined."""
        return self._wall(self._quarantine[target]) if self.is_quarantined(target) else None

    def ended_quarantines(self) -> list[str]:
        """Targets whose quarantine has run out since the last call (each is reported once)."""
        now = self._clock.monotonic()
        ended = [t for t, until in self._quarantine.items() if until <= now]
        for target in ended:
            del self._quarantine[target]
            self._drop(target, QUARANTINE)
        return ended

    def _recent(self, logs: dict[str, deque[float]], target: str, window: float) -> deque[float]:
        log = logs.setdefault(target, deque())
        horizon = self._clock.monotonic() - window
        while log and log[0] < horizon:
            log.popleft()
        return log
