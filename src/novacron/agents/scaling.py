"""Scaling adjuster: judges past scaling actions and proposes a calmer policy.

Scaling actions (scale_out / scale_in) come from the store; the load around each comes
from the target's observations (``load_metric``). Each action is judged:

* ``flapping``: the opposite action followed within ``flap_window_s``;
* ``premature``: a scale-out whose load was back under the scale-in level soon after;
* ``late``: load had been over the scale-out level for longer than ``late_after_s``;
* ``needed``: none of the above.

From the flaps it proposes a policy — a longer cool-down (twice the median time between
a scaling action and its reversal) and a wider hysteresis band (scale-in level lowered to
the load seen after the flaps) — bounded by the limits the spec allows.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from novacron.agents._util import output
from novacron.agents.base import AgentContext, AgentOutput, Finding
from novacron.model import ActionKind, ActionStatus, Observation
from novacron.store import ActionRecord

__all__ = ["ScalingAgent", "ScalingEvent", "ScalingPolicy", "judge_events", "propose_policy"]

_SCALING = (ActionKind.SCALE_OUT, ActionKind.SCALE_IN)


@dataclass(frozen=True, slots=True)
class ScalingPolicy:
    """A threshold autoscaling policy."""

    scale_out_above: float = 0.75
    scale_in_below: float = 0.5
    cooldown_s: float = 60.0
    min_replicas: int = 1
    max_replicas: int = 10


@dataclass(frozen=True, slots=True)
class ScalingEvent:
    """One scaling action, at a time, on a target."""

    target: str
    time: float
    out: bool  # scale_out (True) or scale_in (False)


def events_from_store(actions: Sequence[ActionRecord]) -> list[ScalingEvent]:
    """Applied scaling actions, oldest first."""
    done = (ActionStatus.VERIFIED, ActionStatus.APPLIED, ActionStatus.ROLLED_BACK)
    out = [
        ScalingEvent(r.action.target, r.started_at or r.created_at, r.action.kind is ActionKind.SCALE_OUT)
        for r in actions
        if r.action.kind in _SCALING and r.status in done
    ]
    return sorted(out, key=lambda e: e.time)


def _series(obs: Sequence[Observation], metric: str) -> tuple[np.ndarray, np.ndarray]:
    pts = sorted((o.time, float(o.metrics[metric])) for o in obs if metric in o.metrics)
    return np.array([p[0] for p in pts]), np.array([p[1] for p in pts])


def _between(series: tuple[np.ndarray, np.ndarray], t0: float, t1: float) -> np.ndarray:
    times, values = series
    return values[np.searchsorted(times, t0, "left") : np.searchsorted(times, t1, "right")]


def judge_events(
    events: Sequence[ScalingEvent],
    loads: dict[str, Sequence[Observation]],
    metric: str,
    policy: ScalingPolicy,
    *,
    flap_window_s: float = 600.0,
    late_after_s: float = 120.0,
) -> list[dict[str, object]]:
    """A verdict per event: needed, premature, late or flapping."""
    verdicts: list[dict[str, object]] = []
    series = {t: _series(o, metric) for t, o in loads.items()}
    empty = (np.array([]), np.array([]))
    for i, e in enumerate(events):
        nxt = next((n for n in events[i + 1 :] if n.target == e.target), None)
        ser = series.get(e.target, empty)
        verdict = "needed"
        if nxt is not None and nxt.out != e.out and nxt.time - e.time <= flap_window_s:
            verdict = "flapping"
        elif e.out:
            after = _between(ser, e.time, e.time + late_after_s)
            before = _between(ser, e.time - late_after_s * 4, e.time)
            if after.size and after.max() < policy.scale_in_below:
                verdict = "premature"
            elif before.size and int((before > policy.scale_out_above).sum()) * _step(ser[0]) > late_after_s:
                verdict = "late"
        gap = (nxt.time - e.time) if nxt is not None else None
        verdicts.append(
            {
                "target": e.target,
                "time": e.time,
                "kind": "scale_out" if e.out else "scale_in",
                "verdict": verdict,
                "reversed_after_s": gap,
            }
        )
    return verdicts


def _step(times: np.ndarray) -> float:
    return float(np.median(np.diff(times))) if times.size > 2 else 1.0


def propose_policy(
    verdicts: Sequence[dict[str, object]],
    policy: ScalingPolicy,
    *,
    max_cooldown_s: float = 3600.0,
    min_gap: float = 0.15,
) -> ScalingPolicy | None:
    """A calmer policy when flapping or premature actions were seen; None when all is well."""
    flaps = [v for v in verdicts if v["verdict"] in ("flapping", "premature")]
    if not flaps:
        return None
    gaps = [float(v["reversed_after_s"]) for v in flaps if isinstance(v["reversed_after_s"], int | float)]
    cooldown = min(max_cooldown_s, max(policy.cooldown_s * 2, 2 * statistics.median(gaps) if gaps else 0.0))
    scale_in = min(
        policy.scale_in_below,
        policy.scale_out_above - max(min_gap, 2 * (policy.scale_out_above - policy.scale_in_below)),
    )
    return replace(policy, cooldown_s=round(cooldown, 1), scale_in_below=round(max(scale_in, 0.05), 3))


class ScalingAgent:
    """Accuracy of past scaling and a proposed policy, per target."""

    name = "scaling"
    interval_s = 600.0

    def __init__(self, *, metric: str = "load", policy: ScalingPolicy | None = None) -> None:
        self.metric = metric
        self.policy = policy or ScalingPolicy()

    def run(self, context: AgentContext) -> AgentOutput:
        """Judge the scaling history and propose policy changes."""
        metric = str(context.options.get("metric", self.metric))
        events = events_from_store(context.actions())
        loads = {t.name: context.observations(t.name) for t in context.spec.targets}
        findings: list[Finding] = []
        for target in sorted({e.target for e in events}):
            mine = [e for e in events if e.target == target]
            tspec = next((t for t in context.spec.targets if t.name == target), None)
            policy = replace(self.policy, max_replicas=tspec.max_replicas) if tspec else self.policy
            verdicts = judge_events(mine, loads, metric, policy)
            needed = sum(v["verdict"] == "needed" for v in verdicts)
            proposal = propose_policy(verdicts, policy)
            evidence: dict[str, object] = {
                "verdicts": verdicts,
                "accuracy": round(needed / len(verdicts), 3),
                "policy": asdict(policy),
            }
            if proposal is not None:
                evidence["proposed_policy"] = asdict(proposal)
            kinds = {str(v["verdict"]) for v in verdicts}
            findings.append(
                Finding(
                    target,
                    "scaling_accuracy",
                    f"{needed}/{len(verdicts)} scaling actions needed"
                    + (f"; {', '.join(sorted(kinds - {'needed'}))} seen" if kinds - {"needed"} else ""),
                    0.8,
                    evidence,
                )
            )
        return output(self.name, context, findings, (), f"{len(events)} scaling action(s) judged")
