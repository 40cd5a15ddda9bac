"""``novacron bench learning``: the learned remediation policy against the static ladder, on the twin.

A six-service twin fleet (two chains of dependencies, one other tenant's VM per host)
takes faults of six kinds whose best first step differs: crash and leak (restart), bad
configuration (rollback), dependency outage (wait), noisy neighbour and host failure
(replace). The bandit learns online from ``faults`` faults (seed 1, exploring), then the
ladder and the learned policy (greedy, still learning online) each take the same
``eval_faults`` faults on a separate seed (2). Everything runs through the real controller
and safety gate under simulated time.

Reported: MTTR p50/p95 (healed faults), success (healed by the controller, no human),
actions per fault, per kind; the MTTR reduction against the ladder; regressions (kinds
where the learned policy is slower or heals less); safety (chosen actions outside the
allowed set, exploration on a P0); learning speed (faults until the moving reward reaches
90 % of its final level); and off-policy estimates of the greedy policy's first-step reward
(IPS, doubly robust) from a separate exploring run's log, beside its true value.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from novacron.benchmarks._stats import percentiles
from novacron.errors import MissingExtraError
from novacron.learning import FaultContext, LadderPolicy, Record, doubly_robust, ips, policy_from_state
from novacron.model import ActionKind
from novacron.runtime.faultrun import FaultPlan, FaultResult
from novacron.runtime.training import LEARNING_KINDS, TwinRun, fault_plans, run_on_twin
from novacron.settings import FleetSpec, LearnerName, LearningSpec, parse_spec

__all__ = ["learning_fleet", "run_learning_bench"]

_WINDOW = 100  # faults in the learning curve's moving average


def learning_fleet() -> FleetSpec:
    """The benchmark's twin fleet: db ← api ← web, db ← worker, cache, batch."""
    check = {"type": "http", "url": "http://twin/health", "interval_s": 0.5, "timeout_s": 0.25, "failures": 2}
    deps = {"api": ["db"], "web": ["api"], "worker": ["db"]}
    names = ("db", "api", "web", "worker", "cache", "batch")
    return parse_spec(
        {
            "name": "learning-bench",
            "policy": {
                "max_actions_per_target_per_hour": 1_000_000,
                "flap": {"threshold": 1_000_000},
                "backoff": {"base_s": 0.2, "cap_s": 2.0},
                "blast_radius": 1.0,
                "verify_timeout_s": 4.0,
            },
            "twin": {
                "seed": 3,
                "dt_s": 0.25,
                "restart_s": 1.0,
                "replace_s": 3.0,
                "host_repair_s": 30.0,
                "neighbours": len(names),
                "leak_gb_per_s": 6.0,
                "probe_latency_s": 0.01,
            },
            "targets": [
                {"name": n, "kind": "sim", "checks": [check], "depends_on": deps.get(n, []), "start_timeout_s": 5.0}
                for n in names
            ],
        },
        source="learning-bench",
    )


DEFAULT_ACTIONS = tuple(LearningSpec().actions)  # the product's default


def _with(
    spec: FleetSpec,
    *,
    enabled: bool,
    explore: bool,
    learner: LearnerName = "bandit",
    actions: Sequence[ActionKind] = DEFAULT_ACTIONS,
) -> FleetSpec:
    learning = LearningSpec(enabled=enabled, learner=learner, explore=explore, seed=11, actions=list(actions))
    return spec.model_copy(update={"learning": learning})


def _success(results: Sequence[FaultResult]) -> float | None:
    """Healed, and held through the settle after it, among the faults that opened an incident.

    ``no_incident`` counts the others: the target's probes stayed healthy (a noisy
    neighbour on a host with room to spare: nothing to heal). The driver never strikes a
    target with an incident open; an incident the fleet raised between faults is a
    ``relapse``, counted against the fault before it (not held).
    """
    struck = [r for r in results if r.incident_id is not None]
    return round(sum(r.held for r in struck) / len(struck), 4) if struck else None


def _kind_summary(run: TwinRun, kind: str) -> dict[str, Any]:
    """One fault kind's figures in ``run``: MTTR p50/p95 of its healed faults, success, first steps."""
    rows = [(r, n, f) for r, n, f in zip(run.times.results, run.actions, run.first_actions, strict=True)]
    mine = [(r, n, f) for r, n, f in rows if r.plan.kind == kind]
    healed = [r.mttr_s for r, _, _ in mine if r.mttr_s is not None]
    acts = [n for _, n, _ in mine]
    firsts = Counter(f for _, _, f in mine if f is not None)
    return {
        "faults": len(mine),
        "no_incident": sum(r.incident_id is None for r, _, _ in mine),
        "success": _success([r for r, _, _ in mine]),
        "mttr_p50_s": round(statistics.median(healed), 2) if healed else None,
        "mttr_p95_s": round(float(np.percentile(healed, 95)), 2) if healed else None,
        "actions_per_fault": round(statistics.fmean(acts), 2) if acts else None,
        "first_action": firsts.most_common(1)[0][0] if firsts else None,
        "first_actions": dict(firsts.most_common()),
    }


def _summary(run: TwinRun) -> dict[str, Any]:
    results = run.times.results
    mttr = [r.mttr_s for r in results if r.mttr_s is not None]
    per_kind = {kind: _kind_summary(run, kind) for kind in LEARNING_KINDS}
    return {
        "faults": len(results),
        "no_incident": sum(r.incident_id is None for r in results),
        "relapses": run.times.relapses,
        # The mean beside the median: the healed faults' times sit in clusters (one per kind's
        # repair), and a median on the edge of two moves with a few faults either way.
        "mttr_s": {
            **{k: v for k, v in percentiles(mttr).items() if k != "p99"},
            "mean": round(statistics.fmean(mttr), 2) if mttr else None,
        },
        "success": _success(results),
        "actions_per_fault": round(statistics.fmean(run.actions), 3) if run.actions else None,
        "kinds": per_kind,
    }


def _same_faults(ladder: TwinRun, learned: TwinRun) -> dict[str, Any]:
    """MTTR p50 of both policies on the faults both healed for good (the ladder never heals a bad configuration)."""
    if len(ladder.times.results) != len(learned.times.results):
        return {"faults": 0, "why": "the runs did not take the same faults (one found the fleet busy)"}
    pairs = [
        (a.mttr_s, b.mttr_s)
        for a, b in zip(ladder.times.results, learned.times.results, strict=True)
        if a.held and b.held and a.mttr_s is not None and b.mttr_s is not None  # held: healed
    ]
    if not pairs:
        return {"faults": 0}
    lp50, bp50 = statistics.median(a for a, _ in pairs), statistics.median(b for _, b in pairs)
    return {
        "faults": len(pairs),
        "ladder_p50_s": round(lp50, 3),
        "learned_p50_s": round(bp50, 3),
        "reduction": round(1.0 - bp50 / lp50, 3),
    }


def _reduction(ladder: dict[str, Any], learned: dict[str, Any], stat: str) -> float | None:
    """1 − learned/ladder of one MTTR statistic (``p50``, ``mean``), None without both."""
    base, mine = ladder["mttr_s"][stat], learned["mttr_s"][stat]
    return round(1.0 - mine / base, 3) if base and mine is not None else None


def _regressions(ladder: dict[str, Any], learned: dict[str, Any]) -> list[str]:
    """Kinds where the learned policy heals less often, or its MTTR p50 is over 10 % slower."""
    out = []
    for kind in LEARNING_KINDS:
        base, mine = ladder["kinds"][kind], learned["kinds"][kind]
        worse = (mine["success"] or 0) < (base["success"] or 0)
        slower = (mine["mttr_p50_s"] or 0) > 1.1 * (base["mttr_p50_s"] or 1e9)
        if worse or slower:
            out.append(kind)
    return out


def _fault_rewards(run: TwinRun) -> list[float]:
    """The summed step rewards of each incident, in the order the faults came."""
    by_incident: dict[str, float] = {}
    for d in run.decisions:
        if d.reward is not None and d.incident_id is not None:
            by_incident[d.incident_id] = by_incident.get(d.incident_id, 0.0) + d.reward
    return [by_incident[r.incident_id] for r in run.times.results if r.incident_id in by_incident]


def _learning_speed(rewards: Sequence[float]) -> dict[str, Any]:
    """Faults until the moving mean reward covers 90 % of the way from its start to its final level."""
    if len(rewards) < 2 * _WINDOW:
        return {"faults_to_90pct": None, "window": _WINDOW}
    smooth = np.convolve(np.asarray(rewards), np.ones(_WINDOW) / _WINDOW, mode="valid")
    start, final = float(smooth[0]), float(np.mean(smooth[-_WINDOW:]))
    if final <= start:
        return {"faults_to_90pct": None, "window": _WINDOW, "start": round(start, 2), "final": round(final, 2)}
    reached = int(np.argmax(smooth >= start + 0.9 * (final - start))) + _WINDOW
    return {
        "faults_to_90pct": reached,
        "within_500": reached <= 500,
        "window": _WINDOW,
        "start": round(start, 2),
        "final": round(final, 2),
    }


def _first_steps(run: TwinRun) -> list[Record]:
    return [
        Record(FaultContext.from_dict(d.context), tuple(d.allowed), d.action, d.propensity, d.reward)
        for d in run.decisions
        if d.reward is not None and not d.context.get("tried")
    ]


def _ope(learned: dict[str, Any], logged: TwinRun, greedy: TwinRun) -> dict[str, Any]:
    """The greedy policy's mean first-step reward: estimated on the exploring log, and true."""
    policy = policy_from_state(learned)
    records = _first_steps(logged)
    true = [r.reward for r in _first_steps(greedy)]

    def probs(ctx: FaultContext, allowed: Sequence[str]) -> dict[str, float]:
        return policy.probabilities(ctx, allowed, explore=False)

    est_ips = ips(records, probs).value
    est_dr = doubly_robust(records, probs, policy.value).value
    truth = statistics.fmean(true)
    return {
        "ips": round(est_ips, 3),
        "dr": round(est_dr, 3),
        "true": round(truth, 3),
        "ips_error": round((est_ips - truth) / abs(truth), 3),
        "dr_error": round((est_dr - truth) / abs(truth), 3),
        "decisions": len(records),
    }


def _safety(runs: Sequence[TwinRun]) -> dict[str, int]:
    decisions = [d for run in runs for d in run.decisions]
    return {
        "decisions": len(decisions),
        "outside_allowed": sum(d.action not in d.allowed for d in decisions),
        "explored_on_p0": sum(d.explored and d.context.get("priority") == 0 for d in decisions),
    }


def _dqn(
    spec: FleetSpec, learn_plans: Sequence[FaultPlan], eval_plans: Sequence[FaultPlan], actions: Sequence[ActionKind]
) -> dict[str, Any]:
    """Train the DQN on the learning faults, evaluate it greedy on the evaluation faults."""
    try:
        from novacron.runtime.dqntrain import train_dqn_on_twin

        explorer = _with(spec, enabled=True, explore=True, actions=actions)
        state, run, counts = train_dqn_on_twin(explorer, learn_plans, seed=1)
    except MissingExtraError as exc:
        return {"skipped": str(exc)}
    evaluated = _with(spec, enabled=True, explore=False, learner="dqn", actions=actions)
    greedy = run_on_twin(evaluated, eval_plans, policy_state=state)
    return {
        **_summary(greedy),
        "training": {**counts, "faults": run.times.injected, **_learning_speed(_fault_rewards(run))},
        "safety": _safety([greedy]),
    }


def _fixed_first(spec: FleetSpec, plans: Sequence[FaultPlan], first: str, actions: Sequence[ActionKind]) -> TwinRun:
    """Every fault's first step is ``first``, then the ladder's steps not tried yet (greedy, never learning)."""
    ladder = [str(k) for k in spec.policy.ladder if k is not ActionKind.ESCALATE]
    steps = [first, *(step for step in ladder if step != first)]
    fixed = _with(spec, enabled=True, explore=False, learner="ladder", actions=actions)
    return run_on_twin(fixed, plans, policy=LadderPolicy(steps))


def _best_first(tried: dict[str, dict[str, Any]], *, by_success: bool) -> str:
    """The first step whose kind heals most often (when ``by_success``), then fastest (MTTR p50)."""

    def key(action: str) -> tuple[float, float]:
        row = tried[action]
        p50 = row["mttr_p50_s"] if row["mttr_p50_s"] is not None else float("inf")
        return (-(row["success"] or 0.0) if by_success else 0.0, p50)

    return min(tried, key=key)


def _pooled(runs: dict[str, TwinRun], picks: dict[str, str], ladder_p50: float | None) -> dict[str, Any]:
    """MTTR and success when each kind's faults take their picked first step (from that step's run)."""
    mine = [r for kind, first in picks.items() for r in runs[first].times.results if r.plan.kind == kind]
    mttr = [r.mttr_s for r in mine if r.mttr_s is not None]
    p50 = percentiles(mttr)["p50"] if mttr else None
    return {
        "first_action": dict(picks),
        "mttr_s": {k: v for k, v in percentiles(mttr).items() if k != "p99"},
        "success": _success(mine),
        "mttr_reduction_vs_ladder": round(1.0 - p50 / ladder_p50, 3) if ladder_p50 and p50 else None,
    }


def _oracle(
    spec: FleetSpec, plans: Sequence[FaultPlan], actions: Sequence[ActionKind], ladder_p50: float | None
) -> dict[str, Any]:
    """The best fixed first step per kind, found by trying each allowed one on the evaluation faults.

    Each candidate first step (then the ladder) takes all the evaluation faults; per kind
    the step that heals most often, then fastest, is the oracle's. It is a reference for the
    first step, not a ceiling: it knows each fault's kind, is picked on these very faults and
    follows the ladder after its first step, so a policy choosing by more than the kind (or
    its later steps otherwise) can beat it. ``fastest`` ignores success: each kind's fastest
    MTTR p50, held or not.
    """
    runs = {str(a): _fixed_first(spec, plans, str(a), actions) for a in actions}
    tried = {kind: {a: _kind_summary(run, kind) for a, run in runs.items()} for kind in LEARNING_KINDS}
    best = {kind: _best_first(rows, by_success=True) for kind, rows in tried.items()}
    fastest = {kind: _best_first(rows, by_success=False) for kind, rows in tried.items()}
    kinds = {
        kind: {
            **rows[best[kind]],
            "tried": {
                a: {k: row[k] for k in ("success", "mttr_p50_s", "mttr_p95_s", "actions_per_fault")}
                for a, row in rows.items()
            },
        }
        for kind, rows in tried.items()
    }
    return {
        **_pooled(runs, best, ladder_p50),
        "fastest": _pooled(runs, fastest, ladder_p50),
        "kinds": kinds,
        "safety": _safety(list(runs.values())),
    }


_BY_KIND_FIELDS = ("mttr_p50_s", "mttr_p95_s", "success", "first_action", "faults", "no_incident")


def _by_kind(policies: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per fault kind, each policy's MTTR p50/p95, success and most frequent first step, side by side."""
    return {
        kind: {
            name: {k: out["kinds"][kind][k] for k in _BY_KIND_FIELDS}
            for name, out in policies.items()
            if "kinds" in out
        }
        for kind in LEARNING_KINDS
    }


def run_learning_bench(
    *,
    faults: int = 2000,
    eval_faults: int = 600,
    dqn: bool = True,
    oracle: bool = True,
    actions: Sequence[ActionKind] = DEFAULT_ACTIONS,
) -> dict[str, Any]:
    """Learn on one seed, evaluate the ladder and the learned policies on another; JSON-ready.

    ``actions`` are the steps the learners may choose among (the ladder keeps its own);
    ``oracle`` also runs every one of them as the fixed first step on the evaluation faults.
    """
    started, load_before = time.monotonic(), os.getloadavg()[0]
    spec = learning_fleet()
    learn_plans = fault_plans(spec, faults, seed=1)
    learn = run_on_twin(_with(spec, enabled=True, explore=True, actions=actions), learn_plans)
    assert learn.policy_state is not None
    eval_plans = fault_plans(spec, eval_faults, seed=2)
    ladder = run_on_twin(_with(spec, enabled=False, explore=False), eval_plans)
    greedy_spec = _with(spec, enabled=True, explore=False, actions=actions)
    greedy = run_on_twin(greedy_spec, eval_plans, policy_state=learn.policy_state)
    logged_spec = _with(spec, enabled=True, explore=True, actions=actions)
    logged = run_on_twin(logged_spec, eval_plans, policy_state=learn.policy_state)
    out_ladder, out_bandit = _summary(ladder), _summary(greedy)
    out_dqn: dict[str, Any] = _dqn(spec, learn_plans, eval_plans, actions) if dqn else {"skipped": "--no-dqn"}
    dp50: float | None = out_dqn["mttr_s"]["p50"] if "mttr_s" in out_dqn else None
    lp50, bp50 = out_ladder["mttr_s"]["p50"], out_bandit["mttr_s"]["p50"]
    out_oracle = _oracle(spec, eval_plans, actions, lp50) if oracle else {"skipped": "--no-oracle"}
    return {
        "actions": [str(a) for a in actions],
        "ladder": out_ladder,
        "bandit": out_bandit,
        "dqn": out_dqn,
        "mttr_reduction_vs_ladder": round(1.0 - bp50 / lp50, 3) if lp50 else None,
        "dqn_mttr_reduction_vs_ladder": round(1.0 - dp50 / lp50, 3) if lp50 and dp50 else None,
        "mttr_mean_reduction_vs_ladder": _reduction(out_ladder, out_bandit, "mean"),
        "success_delta_vs_ladder": round(out_bandit["success"] - out_ladder["success"], 4),
        "regressions": _regressions(out_ladder, out_bandit),
        "same_faults": _same_faults(ladder, greedy),
        # What a controller with the default ``learning.explore: true`` does with the policy.
        "bandit_exploring": _summary(logged),
        "dqn_regressions": _regressions(out_ladder, out_dqn) if "kinds" in out_dqn else None,
        "oracle": out_oracle,
        "by_kind": _by_kind({"ladder": out_ladder, "bandit": out_bandit, "dqn": out_dqn, "oracle": out_oracle}),
        "learning": {"faults": learn.times.injected, **_learning_speed(_fault_rewards(learn))},
        "ope": _ope(learn.policy_state, logged, greedy),
        "safety": _safety([learn, greedy, logged]),
        "wall_s": round(time.monotonic() - started, 1),
        "load_avg_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
    }
