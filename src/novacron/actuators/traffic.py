"""Sends traffic actions to the load balancer and every other action to the target's own actuator.

Routing by target kind is not enough once a target has a frontend: a restart of ``web``
goes to its processes, a reroute of ``web`` to HAProxy. This wrapper decides by action
kind, so the executor still sees one actuator.
"""

from __future__ import annotations

from novacron.actuators.base import Actuator
from novacron.actuators.haproxy import TRAFFIC_ACTIONS
from novacron.model import Action, Outcome, TargetId, TargetState

__all__ = ["TrafficSplit"]


class TrafficSplit:
    """Traffic actions to ``traffic``, the rest (and every observation) to ``inner``."""

    def __init__(self, inner: Actuator, traffic: Actuator) -> None:
        self.inner, self.traffic = inner, traffic

    async def apply(self, action: Action) -> Outcome:
        """Apply through the actuator that owns the action's kind."""
        return await (self.traffic if action.kind in TRAFFIC_ACTIONS else self.inner).apply(action)

    async def observe(self, target: TargetId) -> TargetState:
        """What runs for ``target`` (its processes)."""
        return await self.inner.observe(target)
