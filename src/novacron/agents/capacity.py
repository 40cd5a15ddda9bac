"""Capacity planner: 30/60/90-day forecasts, saturation risk and cost per target and fleet.

Usage is one metric of the target's observations (``cpu_percent`` by default), summed
over replicas per sample; capacity is ``replicas × capacity_per_replica``. The forecast
and risk come from :func:`novacron.forecasting.capacity.plan_capacity`. When the upper
band crosses capacity within the lead time, the planner proposes a scale-out, which the
coordinator sends to approval.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from novacron.agents._util import output, propose
from novacron.agents.base import AgentContext, AgentOutput, Finding, Proposal
from novacron.errors import InputError
from novacron.forecasting.capacity import CapacityPlan, CostModel, plan_capacity
from novacron.model import ActionKind

__all__ = ["CapacityAgent"]


class CapacityAgent:
    """Forecasts usage against capacity and proposes scale-outs ahead of saturation."""

    name = "capacity"
    interval_s = 3600.0

    def __init__(
        self,
        *,
        metric: str = "cpu_percent",
        capacity_per_replica: float = 100.0,
        lead_time_days: float = 30.0,
        risk_threshold: float = 0.2,
        cost_per_replica_year: float = 0.0,
    ) -> None:
        self.metric = metric
        self.capacity_per_replica = capacity_per_replica
        self.lead_time_days = lead_time_days
        self.risk_threshold = risk_threshold
        self.cost = CostModel(cost_per_unit_year=cost_per_replica_year / max(capacity_per_replica, 1e-9))

    def usage(self, context: AgentContext, target: str, metric: str) -> tuple[np.ndarray, float]:
        """Usage per sample time (replicas summed) and the median sampling interval."""
        by_time: dict[float, float] = defaultdict(float)
        for obs in context.observations(target):
            if metric in obs.metrics:
                by_time[round(obs.time, 0)] += float(obs.metrics[metric])
        times = sorted(by_time)
        if len(times) < 3:
            return np.array([]), 0.0
        return np.array([by_time[t] for t in times]), float(np.median(np.diff(times)))

    def run(self, context: AgentContext) -> AgentOutput:
        """Plan every target, then the fleet as a whole."""
        metric = str(context.options.get("metric", self.metric))
        findings: list[Finding] = []
        proposals: list[Proposal] = []
        fleet: list[np.ndarray] = []
        fleet_capacity = 0.0
        for tspec in context.spec.targets:
            values, step = self.usage(context, tspec.name, metric)
            capacity = tspec.replicas * float(context.options.get("capacity_per_replica", self.capacity_per_replica))
            if values.size == 0 or capacity <= 0:
                continue
            fleet.append(values)
            fleet_capacity += capacity
            plan = self._plan(values, step, capacity)
            if plan is None:
                continue
            finding, proposal = self._judge(tspec.name, plan, tspec.replicas, tspec.max_replicas)
            findings.append(finding)
            proposals += [proposal] if proposal is not None else []
        if len(fleet) > 1:
            n = min(v.size for v in fleet)
            total = np.sum([v[-n:] for v in fleet], axis=0)
            plan = self._plan(total, 1.0, fleet_capacity)
            if plan is not None:
                findings.append(self._judge("fleet", plan, 0, 0)[0])
        return output(
            self.name, context, findings, proposals, f"{len(findings)} plan(s), {len(proposals)} scale-out(s)"
        )

    def _plan(self, values: np.ndarray, step: float, capacity: float) -> CapacityPlan | None:
        try:
            return plan_capacity(values, interval_s=max(step, 1.0), capacity=capacity, cost=self.cost)
        except InputError:  # not enough history yet, or already saturated (the healer's business)
            return None

    def _judge(
        self, target: str, plan: CapacityPlan, replicas: int, max_replicas: int
    ) -> tuple[Finding, Proposal | None]:
        horizons: dict[str, Any] = {
            f"{h.requested_days:g}d": {
                "mean": round(h.mean, 2),
                "high": round(h.high, 2),
                "saturation_risk": round(h.saturation_risk, 3),
                "capacity_to_add": round(h.capacity_to_add, 2),
                "annual_cost": round(h.annual_cost, 2),
            }
            for h in plan.horizons
        }
        due = [h for h in plan.horizons if h.days <= self.lead_time_days and h.saturation_risk >= self.risk_threshold]
        risk = max((h.saturation_risk for h in plan.horizons), default=0.0)
        finding = Finding(
            target,
            "saturation_risk",
            f"usage {plan.current:.1f} of {plan.capacity:.0f}; "
            f"saturation risk {risk:.0%} within {plan.horizons[-1].days:.0f} days",
            max(risk, 0.05),
            {"model": plan.model, "growth_pct_per_30d": round(plan.growth_pct_per_30d, 2), "horizons": horizons},
        )
        if not due or replicas == 0 or replicas >= max_replicas:
            return finding, None
        add = max(1, int(np.ceil(max(h.capacity_to_add for h in due) / self.capacity_per_replica)))
        add = min(add, max_replicas - replicas)
        proposal = propose(
            self.name,
            ActionKind.SCALE_OUT,
            target,
            key=f"{target}/scale-out/{replicas}",
            reason=f"saturation risk {due[0].saturation_risk:.0%} within {due[0].days:.0f} days",
            rollback=f"scale_in by {add} (the catalog inverse)",
            params={"count": add},
        )
        return finding, proposal
