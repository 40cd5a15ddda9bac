"""Sends traffic actions to the load balancer and every other action to the target's own actuator.

Routing by target kind is not enough once a target has a frontend: a restart of ``web``
goes to its processes, a reroute of ``web`` to HAProxy. This wrapper decides by action
kind, so the executor still sees one actuator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from novacron.actuators.base import Actuator, refusal_of
from novacron.actuators.haproxy import TRAFFIC_ACTIONS, HaproxyActuator
from novacron.model import EMPTY, Action, ActionKind, Outcome, TargetId, TargetState

__all__ = ["TrafficSplit", "no_load_balancer"]


class TrafficSplit:
    """Traffic actions to ``traffic``, the rest (and every observation) to ``inner``."""

    def __init__(self, inner: Actuator, traffic: HaproxyActuator) -> None:
        self.inner, self.traffic = inner, traffic

    def refusal(self, kind: ActionKind, target: str, params: Mapping[str, Any] = EMPTY) -> str | None:
        """A traffic action on a target without a frontend is refused; the rest is the inner actuator's call."""
        if kind in TRAFFIC_ACTIONS:
            return None if self.traffic.fronted(target) else no_load_balancer(target)
        return refusal_of(self.inner, kind, target, params)

    async def apply(self, action: Action) -> Outcome:
        """Apply through the actuator that owns the action's kind."""
        return await (self.traffic if action.kind in TRAFFIC_ACTIONS else self.inner).apply(action)

    async def observe(self, target: TargetId) -> TargetState:
        """What runs for ``target`` (its processes)."""
        return await self.inner.observe(target)


def no_load_balancer(target: str) -> str:
    """The reason a traffic action (drain, reroute, …) cannot work on ``target``."""
    return f"{target} has no load balancer to take it out of (give it a frontend: in the spec)"
