"""The one executor: plan → safety gate → apply → verify → roll back.

Every way to act — the controller's ladder, a manual heal, a runbook step, a preventive
action — calls :meth:`Executor.execute`. Each transition is one
:class:`~novacron.healing.events.ActionEvent` on the executor's bus. The action's idempotency key is committed to
the store *before* the action is applied, so a controller that crashes mid-action and
restarts finds the key and never applies the same action twice.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace

from novacron.actuators.base import Actuator, TargetAware, refusal_of
from novacron.clock import Clock
from novacron.healing.approvals import Answer, Approvals
from novacron.healing.catalog import CATALOG, Verification, inverse_of
from novacron.healing.events import ActionEvent, ActionEventBus, ActionPhase
from novacron.healing.fencing import Fence, FencedError
from novacron.healing.health import HealthTracker
from novacron.healing.safety import Decision, SafetyGate, Verdict
from novacron.model import Action, ActionStatus, Incident, Outcome
from novacron.store import ActionRecord, Store
from novacron.store.guard import GuardedStore
from novacron.store.leases import ClaimResult

__all__ = ["ExecResult", "Executor", "Prover"]

Prover = Callable[[Action, list[int] | None], Awaitable[str | None]]
"""Proof that an action's own process serves the target: None when proven, else why not."""

_BUDGET_POLL_S = 0.25  # how soon an action held back by the fleet-wide budget asks again

_INFLIGHT = (
    ActionStatus.PLANNED,
    ActionStatus.APPLYING,
    ActionStatus.APPLIED,
    ActionStatus.AWAITING_APPROVAL,
)


@dataclass(frozen=True, slots=True)
class ExecResult:
    """How one action ended."""

    action: Action
    status: ActionStatus
    detail: str
    decision: Decision | None = None
    outcome: Outcome | None = None
    replayed: bool = False  # the key was already in the store: nothing was applied now
    rolled_back: bool = False
    undo_failed: bool = False  # it did not heal, and its inverse could not undo it: the change stays

    @property
    def verified(self) -> bool:
        """The action ran and the target was verified healthy."""
        return self.status is ActionStatus.VERIFIED


class Executor:
    """Applies actions through the actuator, behind the safety gate, with verification.

    It writes the action's row in the store itself (the idempotency key must be durable
    before anything is applied) and states every transition once on its event bus; the
    timeline, audit trail, metrics and gate are the bus's subscribers.
    """

    def __init__(
        self,
        *,
        store: Store,
        actuator: Actuator,
        gate: SafetyGate,
        health: HealthTracker,
        approvals: Approvals,
        events: ActionEventBus,
        clock: Clock,
        prove: Prover | None = None,
        fence: Fence | None = None,
    ) -> None:
        """``prove`` checks, after the health checks, that the process the action started serves the target."""
        self.store = store
        self.prove = prove
        self.fence = fence  # several controllers: steps on leased targets carry the epoch (healing/fencing.py)
        self.actuator = actuator
        self.gate = gate
        self.health = health
        self.approvals = approvals
        self.events = events
        self.clock = clock
        self._deferred: set[str] = set()

    async def execute(self, action: Action, *, incident: Incident | None = None) -> ExecResult:
        """Run one action end to end and return how it ended."""
        previous = await self.recorded(action.idempotency_key)
        if previous is not None:
            if previous.status in _INFLIGHT:
                adopted = await self._adopted(previous.action)
                if adopted is not None:
                    asked = previous.status is ActionStatus.AWAITING_APPROVAL  # wait on that request, not a new one
                    return await self._decided(previous.action, adopted, incident, asked=asked)
                return await self._reconcile(previous.action, incident)
            return ExecResult(previous.action, previous.status, previous.detail or "already recorded", replayed=True)
        unknown = self._unknown_target(action)
        refused = None if unknown is not None else refusal_of(self.actuator, action.kind, action.target, action.params)
        if refused is not None:
            return self._record_refused(action, refused, incident)
        decision = unknown or self.gate.check(action)
        if decision.verdict is Verdict.DEFER:
            if action.idempotency_key not in self._deferred:  # state a deferral once, not every retry
                self._deferred.add(action.idempotency_key)
                self._emit(ActionPhase.PLANNED, action, incident)
                self._emit(ActionPhase.GATED, action, incident, decision.reason, decision=decision)
            return ExecResult(action, ActionStatus.PLANNED, decision.reason, decision)
        if action.idempotency_key not in self._deferred:
            self._emit(ActionPhase.PLANNED, action, incident)
        self._deferred.discard(action.idempotency_key)
        if decision.verdict in (Verdict.DENY, Verdict.DRY_RUN):
            status = ActionStatus.BLOCKED if decision.verdict is Verdict.DENY else ActionStatus.DRY_RUN
            return self._record_unapplied(action, status, decision, incident)
        self._emit(ActionPhase.GATED, action, incident, decision.reason, decision=decision)
        claim = await self._claim(action, incident)
        if claim == "over_budget":  # several controllers: the fleet-wide blast radius, decided in the store
            reason = "fleet-wide blast radius: the cap of targets under remediation is reached; waiting"
            retry = Decision(
                Verdict.DEFER, reason, retry_at=self.clock.monotonic() + _BUDGET_POLL_S, rail="blast_radius"
            )
            return ExecResult(action, ActionStatus.PLANNED, reason, retry)
        if claim != "claimed":
            return await self.execute(action, incident=incident)  # lost a race: report the winner
        return await self._decided(action, decision, incident)

    async def recorded(self, key: str) -> ActionRecord | None:
        """The action already stored under idempotency key ``key``, read without blocking the loop."""
        if isinstance(self.store, GuardedStore):
            return await self.store.read_action_by_key(key)
        return self.store.action_by_key(key)  # a plain store's reads, like its writes, are inline

    def _unknown_target(self, action: Action) -> Decision | None:
        """Refuse at planning an action no actuator can apply: it must never sit at "applying"."""
        if isinstance(self.actuator, TargetAware) and not self.actuator.knows(action.target):
            return Decision(Verdict.DENY, f"no target {action.target!r} in the fleet to act on", rail="target")
        return None

    def _record_refused(self, action: Action, reason: str, incident: Incident | None) -> ExecResult:
        """An action the actuator cannot carry out: recorded as failed with the reason, never gated or applied."""
        detail = f"refused: {reason}"
        self.store.claim_action(action, ActionStatus.FAILED, now=self.clock.now())
        self.store.set_action_status(action.id, ActionStatus.FAILED, finished_at=self.clock.now(), detail=detail)
        self._emit(ActionPhase.REFUSED, action, incident, detail, status=ActionStatus.FAILED, actor="controller")
        return ExecResult(action, ActionStatus.FAILED, detail)

    def record_vetoed(self, action: Action, *, by: str, detail: str) -> ExecResult:
        """Record a step an advisor vetoed: never applied, failed, so the ladder moves on."""
        self.store.claim_action(action, ActionStatus.FAILED, now=self.clock.now())
        self.store.set_action_status(action.id, ActionStatus.FAILED, finished_at=self.clock.now(), detail=detail)
        self._emit(ActionPhase.VETOED, action, None, detail, status=ActionStatus.FAILED, actor=by)
        return ExecResult(action, ActionStatus.FAILED, detail)

    async def _reconcile(self, action: Action, incident: Incident | None) -> ExecResult:
        """An action found in flight after a controller restart: never re-applied, only judged.

        The real state decides: if the target becomes healthy within the verification
        deadline the action counts as verified, otherwise as failed, and the caller moves on.
        """
        ok, why = await self.health.wait_healthy(action.target, _replicas(action), self._verify_window(action))
        status = ActionStatus.VERIFIED if ok else ActionStatus.FAILED
        detail = f"reconciled after controller restart: {why}"
        self._set_status(action, status, finished_at=self.clock.now(), detail=detail)
        self._emit(ActionPhase.RECONCILED, action, incident, detail, status=status, actor="controller")
        return ExecResult(action, status, detail, replayed=True)

    async def _decided(
        self, action: Action, decision: Decision, incident: Incident | None, *, asked: bool = False
    ) -> ExecResult:
        """Apply a claimed step, after a human's approval when the gate asks for one."""
        if decision.verdict is Verdict.APPROVAL:
            answer = await self._approved(action, incident, asked=asked)
            if not answer.approve:
                detail = answer.who if answer.withdrawn else "rejected"
                self._set_status(action, ActionStatus.BLOCKED, detail=detail)
                return ExecResult(
                    action, ActionStatus.BLOCKED, detail if answer.withdrawn else "rejected by a human", decision
                )
        return await self._apply_and_verify(action, decision, incident)

    async def _approved(self, action: Action, incident: Incident | None, *, asked: bool) -> Answer:
        """Wait for the decision on the action's request; ``asked``: an earlier owner asked (nobody is asked again)."""
        if not asked:
            self._set_status(action, ActionStatus.AWAITING_APPROVAL)
            self._emit(ActionPhase.AWAITING_APPROVAL, action, incident, status=ActionStatus.AWAITING_APPROVAL)
        # A ladder step is withdrawn once its target stays healthy for a verification window.
        recovered = None if incident is None else functools.partial(self.health.is_healthy, action.target)
        waiting = self.approvals.request(
            action, ask=not asked, recovered=recovered, settle_s=self.gate.policy.verify_timeout_s
        )
        try:
            answer = await waiting
        finally:
            self.approvals.forget(action.id)  # handed over: the stored request waits for the next owner
        word = "withdrawn" if answer.withdrawn else "approved" if answer.approve else "rejected"
        data: dict[str, object] = {"approved": answer.approve, "withdrawn": answer.withdrawn}
        self._emit(ActionPhase.APPROVAL, action, incident, f"{word} by {answer.who}", actor=answer.who, data=data)
        return answer

    async def _apply_and_verify(self, action: Action, decision: Decision, incident: Incident | None) -> ExecResult:
        started = self.clock.now()
        fence = self._fence_for(action)
        if fence is not None and not await fence.may_apply(action, now=started):
            raise FencedError(f"{action.kind} {action.target}: the target's lease is no longer this controller's")
        self._set_status(action, ActionStatus.APPLYING, started_at=started)
        self._emit(ActionPhase.APPLYING, action, incident, status=ActionStatus.APPLYING, decision=decision)
        outcome = await self.actuator.apply(action)
        if not outcome.ok:
            return self._finish(action, ActionStatus.FAILED, outcome.detail, decision, outcome, incident)
        self._set_status(action, ActionStatus.APPLIED, detail=outcome.detail)
        self._emit(ActionPhase.APPLIED, action, incident, outcome.detail, status=ActionStatus.APPLIED, outcome=outcome)
        # A rollback restores the previous configuration; the target was unhealthy before it
        # too, so its success is the actuator's, and it is never rolled back in turn.
        if CATALOG[action.kind].verification == Verification.NONE or action.inverse_of is not None:
            return self._finish(action, ActionStatus.VERIFIED, outcome.detail, decision, outcome, incident)
        ok, why = await self.health.wait_healthy(action.target, _replicas(action), self._verify_window(action))
        detail = f"{outcome.detail}; {why}"  # keep what the action did beside how it was judged
        replicas = _replicas(action)
        unproven = (
            None if self.prove is None else await self.prove(action, None if replicas is None else list(replicas))
        )
        if ok and unproven is None:
            return self._finish(action, ActionStatus.VERIFIED, detail, decision, outcome, incident, healthy=True)
        if unproven is not None:
            # Reported as what it is (a process that cannot start, a port someone else holds),
            # never as a passed or failed health check.
            detail = unproven
            outcome = replace(outcome, ok=False, detail=f"{outcome.detail}; {unproven}")
        rolled_back = await self._roll_back(action, incident)
        status = ActionStatus.ROLLED_BACK if rolled_back else ActionStatus.FAILED
        undo_failed = not rolled_back and inverse_of(action) is not None
        return self._finish(
            action, status, detail, decision, outcome, incident, rolled_back=rolled_back, undo_failed=undo_failed
        )

    async def _roll_back(self, action: Action, incident: Incident | None) -> bool:
        undo = inverse_of(action)
        if undo is None:
            return False
        result = await self.execute(undo, incident=incident)
        return result.status in (ActionStatus.VERIFIED, ActionStatus.APPLIED)

    def _finish(
        self,
        action: Action,
        status: ActionStatus,
        detail: str,
        decision: Decision,
        outcome: Outcome,
        incident: Incident | None,
        *,
        rolled_back: bool = False,
        undo_failed: bool = False,
        healthy: bool = False,
    ) -> ExecResult:
        self._set_status(action, status, finished_at=self.clock.now(), detail=detail)
        phase = {ActionStatus.VERIFIED: ActionPhase.VERIFIED, ActionStatus.ROLLED_BACK: ActionPhase.ROLLED_BACK}.get(
            status, ActionPhase.FAILED
        )
        self._emit(phase, action, incident, detail, status=status, decision=decision, outcome=outcome, healthy=healthy)
        return ExecResult(action, status, detail, decision, outcome, rolled_back=rolled_back, undo_failed=undo_failed)

    def _record_unapplied(
        self, action: Action, status: ActionStatus, decision: Decision, incident: Incident | None
    ) -> ExecResult:
        self.store.claim_action(action, status, now=self.clock.now())
        self.store.set_action_status(action.id, status, detail=decision.reason)
        self._emit(ActionPhase.GATED, action, incident, decision.reason, status=status, decision=decision)
        return ExecResult(action, status, decision.reason, decision)

    def _verify_window(self, action: Action) -> float:
        return self.health.verify_window(action.target, self.gate.policy.verify_timeout_s)

    # -- fencing: the only place the executor knows of leases ---------------------------
    def _fence_for(self, action: Action) -> Fence | None:
        return self.fence if self.fence is not None and self.fence.guards(action.target) else None

    async def _adopted(self, action: Action) -> Decision | None:
        """A leased target's step left claimed but never applied by an earlier holder: this one applies it.

        The fence proves it in the store (no apply logged under any epoch); the gate still
        decides, and a step that needs approval waits on its stored request first.
        """
        fence = self._fence_for(action)
        if fence is None:
            return None
        decision = self.gate.check(action)
        if decision.verdict not in (Verdict.ALLOW, Verdict.APPROVAL) or not await fence.adopt(
            action, now=self.clock.now()
        ):
            return None
        return decision

    async def _claim(self, action: Action, incident: Incident | None) -> ClaimResult:
        """Claim the key (under the lease's epoch, within the fleet-wide budget, for a leased target)."""
        now = self.clock.now()
        fence = self._fence_for(action)
        if fence is None:
            if self.store.claim_action(action, ActionStatus.PLANNED, now=now) is not None:
                return "taken"
            if isinstance(self.store, GuardedStore):
                await self.store.settle()  # the key is durable before the action (unless the store fails)
            return "claimed"
        result = await fence.claim(action, ActionStatus.PLANNED, now=now, incident=incident)
        if result == "fenced":
            raise FencedError(f"{action.kind} {action.target}: the target's lease is no longer this controller's")
        return result

    def _set_status(
        self,
        action: Action,
        status: ActionStatus,
        *,
        started_at: float | None = None,
        finished_at: float | None = None,
        detail: str | None = None,
    ) -> None:
        fence = self._fence_for(action)
        if fence is not None:
            fence.set_status(action, status, started_at=started_at, finished_at=finished_at, detail=detail)
            return
        self.store.set_action_status(action.id, status, started_at=started_at, finished_at=finished_at, detail=detail)

    def _emit(
        self,
        phase: ActionPhase,
        action: Action,
        incident: Incident | None,
        detail: str = "",
        *,
        status: ActionStatus | None = None,
        decision: Decision | None = None,
        outcome: Outcome | None = None,
        actor: str = "",
        healthy: bool = False,
        data: dict[str, object] | None = None,
    ) -> None:
        self.events.emit(
            ActionEvent(
                phase,
                action,
                self.clock.now(),
                detail,
                incident=incident,
                status=status,
                decision=decision,
                outcome=outcome,
                actor=actor,
                healthy=healthy,
                data=data or {},
            )
        )


def _replicas(action: Action) -> Iterable[int] | None:
    if "replicas" in action.params:
        return [int(r) for r in action.params["replicas"]]
    if "replica" in action.params:
        return [int(action.params["replica"])]
    return None
