"""The escalation ladder: cheapest action first, verified, then the next, then a human.

One :meth:`Healer.heal` task runs per open incident. Steps have deterministic idempotency
keys (``<incident>/<step>/<kind>``; a runbook's ``<incident>/runbook/<name>/<n>/<step>``),
so after a controller restart the ladder or runbook resumes at the step it had reached and
a step that already ran is never applied again.

An optional :class:`~novacron.healing.advice.Advisor` reviews each new step before it
runs (a veto skips it) and is held to account after it ran; every review, veto and
comparison goes on the incident's timeline.

With :class:`Upstreams` (the flow's dependency graph) a ladder never acts on a symptom:
before each step, and while a step is deferred, an upstream of the target found failing
(its own incident open) stops it. The blast-radius slot is given back between steps,
so the upstream's repair can take it, and the step waits; once the upstream is healed
the target is re-checked, resolved if healthy, or its ladder goes on at the same step.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from novacron.clock import Clock
from novacron.healing.advice import Advisor, Review, event_kind
from novacron.healing.catalog import MITIGATIONS, inverse_of, new_action
from novacron.healing.executor import ExecResult, Executor
from novacron.healing.safety import OWNER_RAIL, SafetyGate, Verdict
from novacron.incidents.lifecycle import IncidentManager
from novacron.incidents.runbooks import Runbook, RunbookContext, RunbookResult
from novacron.model import Action, ActionKind, ActionStatus, Incident, IncidentStatus, Outcome, Priority, TargetId

if TYPE_CHECKING:
    from novacron.healing.learned import LearnedSteps

__all__ = ["Healer", "RunbookChooser", "Upstreams"]

RunbookChooser = Callable[[Incident], tuple[Runbook, Mapping[str, str]] | None]
"""The runbook (and the target's labels) that takes an incident, or None for the ladder."""

_SLOT_POLL_S = 0.1


class Upstreams(Protocol):
    """The dependency graph as a ladder sees it: a failing upstream of its target, and the wait for it."""

    def failing_upstream(self, incident: Incident) -> str | None:
        """The failing upstream that ``incident``'s target must wait for now, if any."""
        ...

    async def wait_for_upstream(self, incident: Incident, upstream: str) -> bool:
        """Wait while ``upstream`` is healed; True when the target is still down and its ladder goes on."""
        ...


class Healer:
    """Walks the policy's ladder for an incident through the one executor."""

    def __init__(
        self,
        executor: Executor,
        incidents: IncidentManager,
        clock: Clock,
        *,
        advisor: Advisor[Any] | None = None,
        chooser: LearnedSteps | None = None,
        runbooks: RunbookChooser | None = None,
        upstreams: Upstreams | None = None,
    ) -> None:
        """``chooser`` (the spec's ``learning`` block) picks each step instead of the ladder;
        ``runbooks`` picks a runbook that takes an incident instead of either; with
        ``upstreams`` a failing upstream is healed before the next step on its dependent."""
        self.executor = executor
        self.incidents = incidents
        self.clock = clock
        self.advisor = advisor
        self.chooser = chooser
        self.runbooks = runbooks
        self.upstreams = upstreams

    @property
    def _gate(self) -> SafetyGate:
        return self.executor.gate

    async def heal(
        self,
        incident: Incident,
        replicas: list[int] | None = None,
        *,
        ladder: list[ActionKind] | None = None,
        params: dict[str, Any] | None = None,
        rerun: str | None = None,
    ) -> None:
        """Drive ``incident`` to resolution or to a human.

        ``ladder`` overrides the policy's (a predicted fault brings its own remedy) and
        ``params`` are passed to every step. ``rerun`` names a later run of the steps on the
        same incident (automation resumed after the kill switch): its steps get keys of their
        own (``<incident>/<rerun>/<step>/<kind>``) where the first run's would be replayed.
        """
        chosen = self.runbooks(incident) if self.runbooks is not None and ladder is None else None
        if chosen is not None:
            if not await self._take_slot(incident):
                return
            try:
                await self._run_book(incident, *chosen, rerun=rerun)
            finally:
                self._gate.release(incident.target)
            return
        steps = ladder or list(self._gate.policy.ladder)
        if not await self._take_slot(incident):
            return
        try:
            if self.chooser is not None and ladder is None:  # learned steps; a predicted remedy keeps its own
                exhausted = await self._learned(incident, replicas, params or {}, self.chooser, rerun)
            else:
                exhausted = await self._ladder(incident, replicas, steps, params or {}, rerun)
        finally:
            self._gate.release(incident.target)
        cheapest = next((k for k in steps if k not in MITIGATIONS), ActionKind.ESCALATE)  # a drain repairs nothing
        if exhausted and cheapest is not ActionKind.ESCALATE:
            await self._retry_while_down(incident, cheapest, params or {})

    async def _retry_while_down(self, incident: Incident, kind: ActionKind, params: dict[str, Any]) -> None:
        """After escalation, try the cheapest step again every backoff cap.

        As Kubernetes' CrashLoopBackOff does: once a human fixes the cause (a bad config,
        a missing dependency) the target recovers without a second page, while the cap
        keeps the attempts slow and the hourly rate limit still bounds them.
        """
        for attempt in itertools.count():
            await self.clock.sleep(self._gate.policy.backoff.cap_s)
            if self._recovered(incident):
                return
            if self.executor.health.is_healthy(incident.target):
                self._resolve(incident, "healthy again")
                return
            if not await self._take_slot(incident):
                return
            try:
                current = self.incidents.open_for(incident.target) or incident
                action = _step_action(
                    incident, kind, f"retry/{attempt}", params, f"retry {attempt + 1} after escalation"
                )
                result = await self._until_decided(action, current)
            finally:
                self._gate.release(incident.target)
            if result.verified:
                self._resolve(incident, f"{kind} verified on retry {attempt + 1}")
                return
            if result.status is ActionStatus.PLANNED:
                return  # never decided: the incident was settled while the retry waited
            if result.status in (ActionStatus.BLOCKED, ActionStatus.DRY_RUN):
                self.incidents.event(current, "retries_stopped", result.detail)
                return

    async def _take_slot(self, incident: Incident) -> bool:
        """Hold a blast-radius slot with no failing upstream ahead; False once the incident is settled.

        Called before each step (never during one): a failing upstream gets the slot back
        and is healed first, the target re-checked after it. While the fleet is over the
        cap, the incident is raised to P0 once.
        """
        warned = False
        while True:
            upstream = self._failing_upstream(incident)
            if upstream is not None and self.upstreams is not None:
                self._gate.release(incident.target)
                if not await self.upstreams.wait_for_upstream(incident, upstream):
                    return False
                continue
            if self._gate.acquire(incident.target):
                return True
            if not warned:
                warned = True
                cap = self._gate.blast_cap
                self.incidents.raise_priority(
                    incident,
                    Priority.P0,
                    f"blast radius: {len(self._gate.remediating)} targets under remediation, cap {cap}; waiting",
                )
            if self._recovered(incident):
                return False
            await self.clock.sleep(_SLOT_POLL_S)

    def _failing_upstream(self, incident: Incident) -> str | None:
        return None if self.upstreams is None else self.upstreams.failing_upstream(incident)

    async def _act(self, action: Action, incident: Incident) -> ExecResult | None:
        """One step, run once no failing upstream is ahead of it; None when the incident was settled meanwhile.

        A step deferred (backoff, the cap) while an upstream is found failing is given up
        unclaimed, so its key is still free: it runs, under that key, after the upstream.
        """
        while await self._take_slot(incident):
            current = self.incidents.open_for(incident.target) or incident
            result = await self._step(action, current)
            if result.status is not ActionStatus.PLANNED or self._failing_upstream(incident) is None:
                return result
        return None

    def _recovered(self, incident: Incident) -> bool:
        current = self.incidents.open_for(incident.target)
        return current is None or current.id != incident.id

    async def _ladder(
        self,
        incident: Incident,
        replicas: list[int] | None,
        ladder: list[ActionKind],
        extra: dict[str, Any],
        rerun: str | None,
    ) -> bool:
        """Walk the ladder; True when every step failed and the incident was escalated."""
        params = {**extra, **({"replicas": replicas} if replicas else {})}
        last = ""
        shields: list[Action] = []
        for step, kind in enumerate(ladder):
            if self._recovered(incident):
                await self._lift(shields, incident)
                return False
            if kind is ActionKind.ESCALATE:
                break
            current = self.incidents.open_for(incident.target) or incident
            if step == 0 and current.status is IncidentStatus.OPEN:
                current = self.incidents.set_status(current, IncidentStatus.MITIGATING)
            reason = f"ladder step {step + 1}/{len(ladder)} for {incident.kind}"
            action = _step_action(incident, kind, _step_name(rerun, step), params, reason)
            result = await self._act(action, incident)
            if result is None or result.status is ActionStatus.PLANNED:
                await self._settled_meanwhile(shields, incident)
                return False
            current = self.incidents.open_for(incident.target) or current  # as it is after any wait
            last = f"{kind}: {result.detail}"
            if result.verified and kind in MITIGATIONS:
                shields.append(result.action)  # users are shielded; the repair goes on
                continue
            if result.verified:
                await self._lift(shields, current)
                self._resolve(incident, f"{kind} verified")
                return False
            if result.status in (ActionStatus.BLOCKED, ActionStatus.DRY_RUN):
                self._stop_automation(current, result)
                return False
        if self._recovered(incident):
            await self._lift(shields, incident)
            return False
        self._keep(shields, incident)
        self.incidents.escalate(incident, f"every step of the ladder failed (last {last})", priority=Priority.P1)
        return True

    async def _learned(
        self,
        incident: Incident,
        replicas: list[int] | None,
        extra: dict[str, Any],
        chooser: LearnedSteps,
        rerun: str | None,
    ) -> bool:
        """Steps chosen one at a time by the learning policy; True when it ran out and escalated."""
        params = {**extra, **({"replicas": replicas} if replicas else {})}
        tried: list[ActionKind] = []
        shields: list[Action] = []
        for step in range(chooser.max_steps):
            if self._recovered(incident):
                await self._lift(shields, incident)
                return False
            current = self.incidents.open_for(incident.target) or incident
            decision = chooser.choose(current, tried)
            if decision.kind is ActionKind.ESCALATE:
                break
            if step == 0 and current.status is IncidentStatus.OPEN:
                current = self.incidents.set_status(current, IncidentStatus.MITIGATING)
            action = _step_action(incident, decision.kind, _step_name(rerun, step), params, decision.reason)
            chooser.record(decision, action, current)
            started = self.clock.monotonic()
            result = await self._act(action, incident)
            if result is None or result.status is ActionStatus.PLANNED:
                await self._settled_meanwhile(shields, incident)
                return False
            current = self.incidents.open_for(incident.target) or current  # as it is after any wait
            shielded = result.verified and decision.kind in MITIGATIONS
            # A mitigation heals nothing: the policy learns it as a step that left the target down.
            learned = dataclasses.replace(result, status=ActionStatus.APPLIED) if shielded else result
            chooser.settle(decision, learned, self.clock.monotonic() - started)
            tried.append(decision.kind)
            if shielded:
                shields.append(result.action)
                continue
            if result.verified:
                await self._lift(shields, current)
                self._resolve(incident, f"{decision.kind} verified")
                return False
            if result.status in (ActionStatus.BLOCKED, ActionStatus.DRY_RUN):
                self._stop_automation(current, result)
                return False
        if self._recovered(incident):
            await self._lift(shields, incident)
            return False
        self._keep(shields, incident)
        self.incidents.escalate(incident, "no learned step healed the target", priority=Priority.P1)
        return True

    async def _settled_meanwhile(self, shields: list[Action], incident: Incident) -> None:
        """A step never decided: the incident was settled while it waited (resolved, or by its owner)."""
        if self._recovered(incident):
            await self._lift(shields, incident)
        else:
            self._keep(shields, incident)  # the owner handed it to a human: the shields stay for them

    async def _lift(self, shields: list[Action], incident: Incident) -> None:
        """Undo the mitigations of a repaired target (a drained replica serves again), newest first."""
        for shield in reversed(shields):
            undo = inverse_of(shield)
            if undo is not None:
                await self._until_decided(undo, incident)

    def _keep(self, shields: list[Action], incident: Incident) -> None:
        """An unrepaired target stays shielded for the human the incident goes to."""
        for shield in shields:
            self.incidents.event(
                incident,
                "mitigation_kept",
                f"{shield.kind} {shield.target} kept until a human repairs it",
                action_id=shield.id,
            )

    async def _step(self, action: Action, incident: Incident) -> ExecResult:
        """One ladder step: the advisor's review (a veto skips it), execution, then hindsight."""
        advisor = self.advisor
        # A step already in the store is replayed or reconciled, not decided again.
        if advisor is None or await self.executor.recorded(action.idempotency_key) is not None:
            return await self._until_decided(action, incident, yields=True)
        review: Review | None = advisor.review(action, incident)
        if review is None:
            return await self._until_decided(action, incident, yields=True)
        self.incidents.event(incident, event_kind(advisor.name), review.reason, **review.data())
        if review.veto:
            detail = f"vetoed by {advisor.name}: {review.reason}"
            vetoed = self.executor.record_vetoed(action, by=advisor.name, detail=detail)
            self.incidents.event(incident, event_kind(advisor.name, "veto"), detail, action_id=action.id)
            return vetoed
        result = await self._until_decided(action, incident, yields=True)
        if result.outcome is not None:  # applied: hold the review to account
            hindsight = advisor.settle(review, result, self.clock.now())
            self.incidents.event(incident, event_kind(advisor.name, "checked"), hindsight.detail, **hindsight.data)
        return result

    async def _until_decided(self, action: Action, incident: Incident, *, yields: bool = False) -> ExecResult:
        """Execute, waiting out deferrals (backoff, blast radius, an owner) with the same action.

        Returned still deferred (status ``planned``) when the step is no longer wanted: the
        incident was resolved meanwhile, or the target's repair was taken over by an owner
        (a host failover) that has finished — its outcome settled the incident (resolved,
        or handed to a human), so the step is never applied after it. A ladder's step
        (``yields``) is also returned deferred once an upstream of its target fails.
        """
        waited_for: str | None = None
        while True:
            result = await self.executor.execute(action, incident=incident)
            if result.decision is None or result.decision.verdict is not Verdict.DEFER:
                return result
            if result.decision.rail == OWNER_RAIL and waited_for is None:
                waited_for = self._gate.owner_of(action.target)
                reason = result.decision.reason
                self.incidents.event(incident, "deferred", reason, action_id=action.id, owner=waited_for)
            retry_at = result.decision.retry_at or (self.clock.monotonic() + _SLOT_POLL_S)
            await self.clock.sleep(max(0.0, retry_at - self.clock.monotonic()))
            if self._recovered(incident):
                return result
            if waited_for is not None and self._gate.owner_of(action.target) is None:
                return result
            if yields and self._failing_upstream(incident) is not None:
                return result

    async def _run_book(
        self, incident: Incident, book: Runbook, labels: Mapping[str, str], *, rerun: str | None = None
    ) -> None:
        """Drive a runbook through the one executor: each action it yields, its outcome sent back.

        Its steps' keys are journaled before they act, as the ladder's are: re-driven after a
        restart, it replays finished steps and reconciles the one in flight; a ``rerun`` acts anew.
        """
        current = self.incidents.open_for(incident.target) or incident
        if current.status is IncidentStatus.OPEN:
            current = self.incidents.set_status(current, IncidentStatus.MITIGATING)
        self.incidents.event(current, "runbook_started", f"runbook {book.name} takes the incident", runbook=book.name)
        gen = book.start(RunbookContext(incident=incident, labels=labels, run=rerun or ""))
        try:
            action = next(gen)
            while True:
                if self._recovered(incident):
                    gen.close()
                    return
                current = self.incidents.open_for(incident.target) or incident
                if action.kind is ActionKind.ESCALATE:
                    reason = str(action.params.get("reason") or action.reason)
                    self.incidents.escalate(current, f"runbook {book.name}: {reason}", priority=Priority.P1)
                    now = self.clock.now()
                    action = gen.send(Outcome(action.id, True, now, now, "handed to a human"))
                    continue
                result = await self._until_decided(action, current)
                if result.status is ActionStatus.PLANNED:
                    gen.close()  # never decided: the incident was settled while the step waited
                    return
                if result.status in (ActionStatus.BLOCKED, ActionStatus.DRY_RUN):
                    gen.close()
                    self._stop_automation(current, result)
                    return
                action = gen.send(_outcome(action, result, self.clock.now()))
        except StopIteration as stop:
            ended = stop.value or RunbookResult("succeeded")
        self._book_ended(incident, book, ended)

    def _book_ended(self, incident: Incident, book: Runbook, ended: RunbookResult) -> None:
        current = self.incidents.open_for(incident.target) or incident
        self.incidents.event(
            current,
            "runbook_finished",
            f"runbook {book.name}: {ended.status}" + (f" ({ended.detail})" if ended.detail else ""),
            runbook=book.name,
            status=ended.status,
            executed=list(ended.executed),
            failed=list(ended.failed),
        )
        if ended.status == "succeeded":
            if self.executor.health.is_healthy(incident.target):
                self._resolve(incident, f"runbook {book.name} succeeded")
            else:
                self.incidents.escalate(current, f"runbook {book.name} ended but {incident.target} is not healthy")
        elif ended.status != "escalated" and not self._recovered(incident):
            self.incidents.escalate(current, f"runbook {book.name} {ended.status}: {ended.detail}")

    def _stop_automation(self, incident: Incident, result: ExecResult) -> None:
        asked = result.decision is not None and result.decision.verdict is Verdict.APPROVAL
        if asked and self.executor.health.is_healthy(incident.target):  # recovered while a human was asked
            self._resolve(incident, f"recovered without the action ({result.detail})")
            return
        if result.status is ActionStatus.DRY_RUN:
            # Nothing works on it: open, not mitigating, or status would show it "healing" for good.
            current = self.incidents.set_status(incident, IncidentStatus.OPEN)
            self.incidents.event(current, "dry_run_end", "dry run: no action taken; the incident stays open")
            return
        rail = (result.decision.rail or None) if result.decision is not None else None
        self.incidents.escalate(incident, f"automation stopped: {result.detail}", priority=Priority.P1, rail=rail)

    def _resolve(self, incident: Incident, how: str) -> None:
        if not self._recovered(incident):
            self.incidents.resolve(incident, healed_by=how)


def _step_name(rerun: str | None, step: int) -> str:
    """A step's place in its key: its index, under the rerun's name for a later run."""
    return str(step) if rerun is None else f"{rerun}/{step}"


def _step_action(incident: Incident, kind: ActionKind, step: str, params: dict[str, Any], reason: str) -> Action:
    """A step's action; its key ``<incident>/<step>/<kind>`` is what makes a resumed ladder idempotent."""
    return new_action(
        kind,
        TargetId(incident.target),
        key=f"{incident.id}/{step}/{kind}",
        incident_id=incident.id,
        params=params,
        reason=reason,
    )


def _outcome(action: Action, result: ExecResult, now: float) -> Outcome:
    """What a runbook step hears back: ok only when the action was verified."""
    if result.outcome is not None:
        return Outcome(action.id, result.verified, result.outcome.started_at, now, result.detail, result.outcome.data)
    return Outcome(action.id, result.verified, now, now, result.detail)
