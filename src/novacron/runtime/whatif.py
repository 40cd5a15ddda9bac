"""What-if before acting: the twin ranks and vetoes ladder steps, then is held to account.

:class:`WhatIfAdvisor` asks the twin, for the target's VM, how long each candidate action
(the remaining steps of the policy's ladder) would take to bring it back, and how the
fleet would fare (:func:`~novacron.twin.what_if`: SLO, cost, risk). A step predicted not to
restore service while a later step is predicted to is vetoed, so the ladder moves on
without spending the attempt. After a real action the prediction is compared with what
happened (verified or not, and how long from the action's start to verified) and the
error is kept, so the twin's calibration is known.

:class:`WhatIfAdvisor` is a :class:`~novacron.healing.advice.Advisor`: give it to the
healer (``SimController(..., advisor_factory=WhatIfAdvisor.factory())``) and the healer
consults it before each automated ladder step and settles it after; every prediction,
veto and comparison goes on the incident's timeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from novacron.actuators.sim import TWIN_ACTIONS
from novacron.healing.advice import Hindsight
from novacron.healing.executor import ExecResult
from novacron.model import Action, ActionKind, Incident
from novacron.sensors.sim import SimSensor
from novacron.settings import Policy
from novacron.twin.sim import Simulator
from novacron.twin.whatif import PlannedAction, time_to_healthy, what_if

__all__ = ["Calibration", "Review", "WhatIfAdvisor"]


@dataclass(frozen=True, slots=True)
class Review:
    """The twin's view of one action before it is applied."""

    action_kind: str
    predicted_recovery_s: float | None  # None: not healthy within the horizon
    alternatives: dict[str, float | None]  # other ladder kinds → predicted recovery
    slo_ok: bool
    cost: float
    risk: float
    veto: bool
    reason: str

    def data(self) -> dict[str, Any]:
        """What goes on the timeline."""
        return {
            "predicted_recovery_s": self.predicted_recovery_s,
            "alternatives": self.alternatives,
            "slo_ok": self.slo_ok,
            "cost": round(self.cost, 3),
            "risk": round(self.risk, 4),
            "veto": self.veto,
        }


@dataclass
class Calibration:
    """Predicted vs actual outcomes of the actions that ran."""

    pairs: list[tuple[float | None, float | None]] = field(default_factory=list)
    vetoes: int = 0

    def add(self, predicted: float | None, actual: float | None) -> None:
        """Record one action's predicted and actual recovery (None: did not recover)."""
        self.pairs.append((predicted, actual))

    def summary(self) -> dict[str, Any]:
        """Counts, outcome accuracy (recovered or not) and recovery-time error."""
        both = [(p, a) for p, a in self.pairs if p is not None and a is not None]
        errors = [abs(p - a) for p, a in both]
        relative = [abs(p - a) / a for p, a in both if a > 0]
        agree = sum((p is None) == (a is None) for p, a in self.pairs)
        return {
            "predictions": len(self.pairs),
            "vetoes": self.vetoes,
            "outcome_accuracy": round(agree / len(self.pairs), 3) if self.pairs else None,
            "recovery_mae_s": round(sum(errors) / len(errors), 3) if errors else None,
            "recovery_mean_relative_error": round(sum(relative) / len(relative), 4) if relative else None,
        }


class WhatIfAdvisor:
    """Consults the twin about ladder steps on sim targets (a healer's advisor)."""

    name = "what-if"

    def __init__(
        self,
        sim: Simulator,
        sensor: SimSensor,
        ladder: list[ActionKind],
        *,
        horizon_s: float = 300.0,
        step_s: float = 1.0,
        veto: bool = True,
    ) -> None:
        self.sim = sim
        self.sensor = sensor
        self.ladder = [k for k in ladder if k in TWIN_ACTIONS]
        self.horizon_s = horizon_s
        self.step_s = step_s
        self.veto = veto
        self.calibration = Calibration()
        # Steps approved but not yet started, by idempotency key: other healers act at the
        # same moment, and a fork without their actions misjudges a shared host.
        self._pending: dict[str, PlannedAction] = {}
        self._started: set[str] = set()

    @classmethod
    def factory(cls, *, horizon_s: float = 300.0, veto: bool = True) -> Callable[[SimSensor, Policy], WhatIfAdvisor]:
        """An ``advisor_factory`` for :class:`~novacron.runtime.simcontroller.SimController`."""

        def build(sensor: SimSensor, policy: Policy) -> WhatIfAdvisor:
            return cls(sensor.sim, sensor, list(policy.ladder), horizon_s=horizon_s, veto=veto)

        return build

    def _others(self, vm: int) -> list[PlannedAction]:
        """Approved steps on other VMs that are not yet in flight (in flight, the fork has them)."""
        plan = []
        for key, planned in list(self._pending.items()):
            in_flight = planned.vm in self.sim.vm_actions
            if in_flight:
                self._started.add(key)
            elif key in self._started:
                del self._pending[key]  # started and finished: part of the present now
            elif planned.vm != vm:
                plan.append(planned)
        return plan

    def _recovery(self, vm: int, kind: ActionKind, others: list[PlannedAction]) -> float | None:
        plan = [PlannedAction(TWIN_ACTIONS[kind], vm), *others]
        return time_to_healthy(self.sim, vm, plan, self.horizon_s, step_s=self.step_s)

    def review(self, action: Action, incident: Incident | None = None) -> Review | None:
        """Predict ``action`` and its alternatives; None when the twin cannot model it.

        A vetoed review is counted in :attr:`calibration`; ``incident`` is not needed (the
        target's VM says everything the twin can use).
        """
        if action.kind not in TWIN_ACTIONS or action.target not in self.sensor.targets:
            return None
        vm = self.sensor.vm(action.target)
        others = self._others(vm)
        mine = self._recovery(vm, action.kind, others)
        later = self.ladder[self.ladder.index(action.kind) + 1 :] if action.kind in self.ladder else []
        alternatives = {k.value: self._recovery(vm, k, others) for k in later}
        planned = PlannedAction(TWIN_ACTIONS[action.kind], vm)
        fleet = what_if(self.sim, [planned, *others], self.horizon_s, samples=10)
        better = [k for k, t in alternatives.items() if t is not None]
        veto = self.veto and mine is None and bool(better)
        if veto:
            self.calibration.vetoes += 1
        else:
            self._pending[action.idempotency_key] = planned
        if veto:
            reason = f"{action.kind} predicted not to restore service within {self.horizon_s:g}s; {better[0]} would"
        elif mine is None:
            reason = f"{action.kind} predicted not to restore service within {self.horizon_s:g}s (no better step)"
        else:
            reason = f"{action.kind} predicted to restore service in {mine:g}s"
        return Review(action.kind.value, mine, alternatives, fleet.slo_ok, fleet.cost, fleet.risk, veto, reason)

    def settle(self, review: Review, result: ExecResult, now: float) -> Hindsight:
        """Compare a review with how the real action ended; keep and return the error."""
        self._pending.pop(result.action.idempotency_key, None)
        self._started.discard(result.action.idempotency_key)
        actual = None
        if result.verified and result.outcome is not None:
            actual = now - result.outcome.started_at
        self.calibration.add(review.predicted_recovery_s, actual)
        predicted = review.predicted_recovery_s
        error = None if predicted is None or actual is None else round(predicted - actual, 3)
        check = {
            "predicted_recovery_s": predicted,
            "actual_recovery_s": None if actual is None else round(actual, 3),
            "error_s": error,
            "outcome_matched": (predicted is None) == (actual is None),
        }
        return Hindsight(_describe(check), check)


def _describe(check: dict[str, Any]) -> str:
    predicted, actual = check["predicted_recovery_s"], check["actual_recovery_s"]
    word = "matched" if check["outcome_matched"] else "missed"
    return f"prediction {word}: predicted {predicted} s, actual {actual} s"
