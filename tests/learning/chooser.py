"""A learning step chooser on a store, alone: no controller, one target, the gate's defaults."""

from __future__ import annotations

from typing import Any

from novacron.clock import Clock
from novacron.healing.health import HealthTracker
from novacron.healing.learned import LearnedSteps, StepDecision
from novacron.healing.safety import SafetyGate
from novacron.learning import FaultContext
from novacron.model import ActionKind
from novacron.settings import LearningSpec, Policy
from novacron.store import Store

CONTEXT = FaultContext(kind="hang", detail="no_answer", host="busy")


def chooser(store: Store, clock: Clock, **spec: Any) -> LearnedSteps:
    """A bandit chooser (seeded, value check off) with ``spec``'s learning settings."""
    gate = SafetyGate(Policy(), clock, fleet_size=1, seed=0)
    health = HealthTracker(clock, on_fault=lambda f: None, on_recovered=lambda t: None)
    learning = LearningSpec(enabled=True, seed=1, value_check={"enabled": False}, **spec)
    return LearnedSteps(learning, store=store, gate=gate, health=health, graph={}, clock=clock)


def reallocate_decision() -> StepDecision:
    """The chooser's decision to reallocate for :data:`CONTEXT`."""
    return StepDecision(ActionKind.REALLOCATE, CONTEXT, ["restart", "reallocate"], 0.5, True, "test")
