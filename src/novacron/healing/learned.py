"""The healer's step chooser when the spec's ``learning`` block is on.

:class:`LearnedSteps` asks a :mod:`novacron.learning` policy for each step of an incident,
learns from each step's outcome, and keeps the decision log. Safety comes first and
is not the policy's to judge: the allowed set holds only actions the safety gate would
run without a human (no approval needed), that are low or medium risk or have an inverse,
and that this incident has not tried yet; the policy can choose nothing else. A P0
incident is never explored on (the best estimate is taken). A stored policy that cannot
be read (another version, a corrupt body) is not used: the chooser falls back to the
ladder and says so in the log and the audit trail.

A learned policy also acts only while it is estimated to do better than the ladder
(:mod:`novacron.learning.valuecheck`): on loading, and every few settled decisions, both are
scored on the newest logged decisions in the store. While it is not better the ladder
chooses (the learned policy still learns from every outcome, and takes over again when its
estimate wins), and the controller says so: log, audit trail, each step's reason on the
incident's timeline, and the ``learning`` line of ``novacron status`` / ``GET /status``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from novacron.clock import Clock
from novacron.errors import InputError
from novacron.healing.catalog import CATALOG
from novacron.healing.executor import ExecResult
from novacron.healing.health import HealthTracker
from novacron.healing.hosts import HostView, host_evidence
from novacron.healing.safety import SafetyGate
from novacron.learning import (
    Choice,
    FaultContext,
    LadderPolicy,
    Record,
    RemediationPolicy,
    RewardWeights,
    ThompsonPolicy,
    answers_slowed,
    detail_class,
    policy_from_state,
    reward,
)
from novacron.learning.valuecheck import ValueVerdict, compare_to_ladder
from novacron.model import Action, ActionKind, ActionStatus, Incident, Priority, RiskLevel
from novacron.settings import LearningSpec
from novacron.store import Store
from novacron.store.learning import POLICY_IN_USE_KEY, PolicyLog
from novacron.telemetry import get_logger

__all__ = ["LearnedSteps", "StepDecision"]

_HOUR = 3600.0
_SAVE_EVERY = 25  # online updates between stored snapshots (and one at stop)


@dataclass(frozen=True, slots=True)
class _Held:
    """A verified step whose reward waits until its target has stayed well for the hold."""

    decision: StepDecision
    target: str
    elapsed_s: float
    outcome: str
    until: float  # monotonic: learned as healed from then on


@dataclass(slots=True)
class StepDecision:
    """One choice of the policy, until its step has ended."""

    kind: ActionKind
    context: FaultContext
    allowed: list[str]
    propensity: float
    explored: bool
    reason: str
    decision_id: str | None = None
    action_id: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


class LearnedSteps:
    """Chooses every healer step with a learning policy, inside the gate's mask."""

    def __init__(
        self,
        spec: LearningSpec,
        *,
        store: Store,
        gate: SafetyGate,
        health: HealthTracker,
        graph: Mapping[str, Sequence[str]],
        clock: Clock,
        weights: RewardWeights | None = None,
        refusal: Callable[[ActionKind, str], str | None] | None = None,
        hosts: HostView | None = None,
    ) -> None:
        """``refusal`` tells why an action cannot work on a target here (no load balancer, no cgroup);
        ``hosts`` tells where targets run and how their hosts are (None: no host evidence)."""
        self.spec = spec
        self.refusal = refusal
        self.hosts = hosts
        self.gate = gate
        self.health = health
        self.graph = graph
        self.clock = clock
        self.weights = weights or RewardWeights()
        self.store = store
        self.log = PolicyLog(store)
        self.max_steps = spec.max_steps
        self._recent: dict[str, deque[float]] = {}
        self._holding: dict[str, _Held] = {}  # target → its last verified step, until it held
        self._unsaved = 0
        self._since_judged = 0
        self._log = get_logger(component="learning")
        self.ladder = LadderPolicy(self._ladder())
        self.verdict: ValueVerdict | None = None
        self.falling_back = False  # the ladder acts while the learned policy is not estimated better
        self._why = ""  # why the ladder acts instead of a learner, when it does from the start
        self.policy: RemediationPolicy = self._load(store)
        if self._judged():
            self.judge()
        else:
            self._publish(self.policy.name, self._why or "not judged against the ladder (value_check off)")

    @property
    def acting(self) -> RemediationPolicy:
        """The policy that chooses now: the learned one, or the ladder while it is not better."""
        return self.ladder if self.falling_back else self.policy

    # -- the policy --------------------------------------------------------------------
    def _ladder(self) -> list[str]:
        return [str(k) for k in self.gate.policy.ladder if k is not ActionKind.ESCALATE]

    def _fresh(self) -> RemediationPolicy:
        if self.spec.learner == "ladder":
            return LadderPolicy(self._ladder())
        if self.spec.learner == "dqn":  # a DQN is trained on the twin first (novacron learn)
            self._why = "no trained dqn policy in the store; using the ladder"
            self._log.warning("policy fallback", reason=self._why)
            return LadderPolicy(self._ladder())
        return ThompsonPolicy([str(a) for a in self.spec.actions], ladder=self._ladder(), seed=self.spec.seed)

    def _load(self, store: Store) -> RemediationPolicy:
        if self.spec.learner == "ladder":
            self._why = "learner: ladder (decisions logged, nothing learned)"
            return self._fresh()
        stored = self.log.latest_policy(self.spec.policy_name)
        if stored is None:
            return self._fresh()
        try:
            policy = policy_from_state(stored.body, seed=self.spec.seed)
        except InputError as exc:
            reason = f"stored policy {stored.name!r} v{stored.version} is unusable ({exc}); using the ladder"
            self._log.warning("policy fallback", reason=reason)
            store.audit(
                now=self.clock.now(), actor="controller", verb="policy.fallback", subject=stored.name, result=reason
            )
            self._why = reason
            return LadderPolicy(self._ladder())
        self._log.info("policy loaded", name=stored.name, version=stored.version, kind=policy.name)
        return policy

    # -- is the learned policy better than the ladder? ---------------------------------
    def _judged(self) -> bool:
        return self.spec.value_check.enabled and not isinstance(self.policy, LadderPolicy)

    def judge(self) -> ValueVerdict:
        """Score the learned policy against the ladder on the store's newest logged decisions."""
        check = self.spec.value_check
        rows = self.log.decisions(limit=check.window, settled=True, newest=True)
        records = [
            Record(FaultContext.from_dict(r.context), tuple(r.allowed), r.action, r.propensity, r.reward)
            for r in rows
            if r.reward is not None and 0 < r.propensity <= 1 and r.action in r.allowed
        ]
        verdict = compare_to_ladder(records, self.policy, self.ladder, min_decisions=check.min_decisions, z=check.z)
        self._since_judged = 0
        first, self.verdict = self.verdict is None, verdict
        fall = not verdict.use_learned
        changed = fall != self.falling_back
        self.falling_back = fall
        self._publish(self.acting.name, verdict.reason, verdict)
        if changed or (first and verdict.judged):
            self._announce(verdict)
        return verdict

    def _announce(self, verdict: ValueVerdict) -> None:
        acting = "the ladder" if self.falling_back else self.policy.name
        result = f"using {acting}: {verdict.reason}"
        if self.falling_back:
            self._log.warning("policy fallback", reason=result)
        else:
            self._log.info("policy in use", reason=result)
        verb = "policy.fallback" if self.falling_back else "policy.learned"
        self.store.audit(
            now=self.clock.now(),
            actor="controller",
            verb=verb,
            subject=self.spec.policy_name,
            result=result,
            estimate=verdict.to_dict(),
        )

    def _publish(self, acting: str, reason: str, verdict: ValueVerdict | None = None) -> None:
        """Keep which policy acts, and why, where ``novacron status`` reads it."""
        body: dict[str, object] = {
            "policy": self.spec.policy_name,
            "learner": self.spec.learner,
            "acting": acting,
            "reason": reason,
            "at": self.clock.now(),
        }
        if verdict is not None:
            body["estimate"] = verdict.to_dict()
        self.store.put_setting(POLICY_IN_USE_KEY, body, now=self.clock.now())

    def save(self, *, source: str = "online") -> int | None:
        """Store a snapshot of a learning policy as a new promoted version."""
        if not isinstance(self.policy, ThompsonPolicy):
            return None
        self._unsaved = 0
        return self.log.save_policy(
            self.spec.policy_name, self.policy.state(), source=source, now=self.clock.now(), promote=True
        )

    # -- the safety mask ---------------------------------------------------------------
    def allowed(self, tried: Sequence[ActionKind], target: str | None = None) -> list[str]:
        """Actions the policy may pick now: gate-approved without a human, safe, untried,
        and possible on ``target`` (a drain needs a load balancer, a reallocate a cgroup)."""
        out = []
        for kind in self.spec.actions:
            spec = CATALOG[kind]
            if kind in tried or self.gate.policy.needs_approval(spec.risk):
                continue
            if spec.risk > RiskLevel.MEDIUM and spec.inverse is None:
                continue  # a risky step with nothing to undo it is a human's call
            if target is not None and self.refusal is not None and self.refusal(kind, target) is not None:
                continue
            out.append(str(kind))
        return out

    def context(self, incident: Incident, tried: Sequence[ActionKind]) -> FaultContext:
        """What is known about ``incident`` now."""
        upstreams = self.graph.get(incident.target, ())
        failing = any(not self.health.is_healthy(u) for u in upstreams)
        recent = self._recent_actions(incident.target)
        host, peers_failing = host_evidence(incident.target, self.hosts, self.health, self.graph)
        return FaultContext(
            kind=incident.kind.value,
            detail=detail_class(incident.summary),
            upstream_failing=failing,
            recent_actions=len(recent),
            priority=int(incident.priority),
            tried=tuple(str(k) for k in tried),
            slowed=answers_slowed(self.health.answer_times(incident.target)),
            host=host,
            peers_failing=peers_failing,
        )

    def _recent_actions(self, target: str) -> deque[float]:
        log = self._recent.setdefault(target, deque())
        while log and log[0] < self.clock.monotonic() - _HOUR:
            log.popleft()
        return log

    # -- the healer's calls ------------------------------------------------------------
    def choose(self, incident: Incident, tried: Sequence[ActionKind]) -> StepDecision:
        """The next step (``escalate`` when nothing allowed is left)."""
        self._learn_held(relapsed=incident.target if not tried else None)
        context = self.context(incident, tried)
        allowed = self.allowed(tried, incident.target)
        policy = self.acting
        explore = self.spec.explore and incident.priority is not Priority.P0 and not self.falling_back
        choice: Choice | None = policy.choose(context, allowed, explore=explore) if allowed else None
        if choice is None or len(tried) >= self.max_steps:
            return StepDecision(ActionKind.ESCALATE, context, allowed, 1.0, False, "nothing allowed is left")
        why = f"{policy.name} chose {choice.action} (p={choice.propensity:.2f}) among {', '.join(allowed)}"
        if self.falling_back and self.verdict is not None:
            why += f" ({self.verdict.reason})"
        return StepDecision(ActionKind(choice.action), context, allowed, choice.propensity, explore, why)

    def record(self, decision: StepDecision, action: Action, incident: Incident) -> None:
        """Log the decision as its step starts."""
        decision.action_id = action.id
        decision.decision_id = self.log.record_decision(
            at=self.clock.now(),
            policy=self.acting.name,
            target=action.target,
            incident_id=incident.id,
            action_id=action.id,
            action=str(decision.kind),
            context=decision.context.to_dict(),
            allowed=decision.allowed,
            propensity=decision.propensity,
            explored=decision.explored,
        )
        self._recent_actions(action.target).append(self.clock.monotonic())

    def settle(self, decision: StepDecision, result: ExecResult, elapsed_s: float) -> float | None:
        """Learn from the step's outcome; returns its reward (None when nothing was applied).

        A verified step is learned only once it has held (``hold_s`` without a new fault on
        its target); until then the policy learns nothing from it (the decision log shows
        its provisional reward) and None is returned.
        """
        self._learn_held()
        if result.status in (ActionStatus.BLOCKED, ActionStatus.DRY_RUN) or result.replayed:
            return None
        if result.verified:
            # A repair that lasts a second (more CPU beside a host's noisy neighbour, say)
            # looks like the fastest fix of all; only one that holds is learned as one.
            until = self.clock.monotonic() + self.spec.hold_s
            target = result.action.target
            self._holding[target] = _Held(decision, target, elapsed_s, str(result.status), until)
            if decision.decision_id is not None:  # the log shows the verification now; a relapse rewrites it
                healed = reward(elapsed_s, healed=True, weights=self.weights, risk=_risk(decision))
                self.log.settle(decision.decision_id, reward=healed, outcome=str(result.status))
            return None
        # A step that did not heal and was cleanly undone by its inverse is a failed step,
        # like a restart that did not help: penalising the undo as harm made every
        # invertible action (the ones exploration prefers) cost ten times more to try.
        # Harm is a change that stays: its undo failed.
        value = reward(elapsed_s, healed=False, harmed=result.undo_failed, weights=self.weights, risk=_risk(decision))
        self._learn(decision, value, str(result.status))
        return value

    def _learn_held(self, *, relapsed: str | None = None) -> None:
        """Learn the held steps whose hold has passed, and ``relapsed``'s as a repair that did not hold."""
        now = self.clock.monotonic()
        for target, held in list(self._holding.items()):
            if now >= held.until or target == relapsed:
                del self._holding[target]
                self._end_hold(held, held_up=now >= held.until)

    def end_holds(self) -> None:
        """A fault from outside is about to strike (the twin's fault driver): every step held until now."""
        for held in self._holding.values():
            self._end_hold(held, held_up=True)
        self._holding.clear()

    def _end_hold(self, held: _Held, *, held_up: bool) -> None:
        """Learn a verified step as healed when it held, else as a step that did not heal."""
        if not held_up:
            self._log.info("repair did not hold", target=held.target, action=str(held.decision.kind))
        value = reward(held.elapsed_s, healed=held_up, weights=self.weights, risk=_risk(held.decision))
        self._learn(held.decision, value, held.outcome if held_up else "relapsed")

    def _learn(self, decision: StepDecision, value: float, outcome: str) -> None:
        """Fold one step's final reward into the policy and the decision log."""
        self.policy.update(decision.context, str(decision.kind), value)
        if decision.decision_id is not None:
            self.log.settle(decision.decision_id, reward=value, outcome=outcome)
        self._unsaved += 1
        if self._unsaved >= _SAVE_EVERY:
            self.save()
        self._since_judged += 1
        if self._judged() and self._since_judged >= self.spec.value_check.every:
            self.judge()

    def feedback(self, action_id: str, verdict: str) -> bool:
        """Fold an operator's mark into the policy; False when no policy chose that action."""
        row = self.log.decision_for_action(action_id)
        if row is None:
            return False
        sign = 1 if verdict == "good" else -1
        value = (row.reward or 0.0) + sign * self.weights.feedback
        self.policy.update(FaultContext.from_dict(row.context), row.action, value)
        self._unsaved += 1
        return True


def _risk(decision: StepDecision) -> int:
    """The catalog risk of the step chosen: its action costs that many units of the reward."""
    return int(CATALOG[decision.kind].risk)
