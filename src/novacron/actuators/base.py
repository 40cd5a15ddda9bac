"""The Actuator contract and routing by target kind.

An actuator is to actions what an httpx transport is to requests: ``apply`` carries one
action out and reports an :class:`~novacron.model.Outcome`; ``observe`` reports what is
really running. The router picks the actuator by the target's kind (``process``,
``sim``, …) so the executor never knows which world it acts on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from novacron.errors import ConfigError
from novacron.model import EMPTY, Action, ActionKind, Outcome, TargetId, TargetState

__all__ = ["Actuator", "ActuatorRouter", "Refusing", "TargetAware", "refusal_of"]


@runtime_checkable
class Actuator(Protocol):
    """Carries out actions on one kind of target."""

    async def apply(self, action: Action) -> Outcome:
        """Carry out ``action``; never raises for an action that simply failed."""
        ...

    async def observe(self, target: TargetId) -> TargetState:
        """What is actually running for ``target``."""
        ...


@runtime_checkable
class TargetAware(Protocol):
    """An actuator that can tell, before acting, whether a target is one it can act on."""

    def knows(self, target: TargetId) -> bool:
        """Whether actions on ``target`` can be applied at all."""
        ...


@runtime_checkable
class Refusing(Protocol):
    """An actuator that can tell, before acting, that an action cannot work on a target here.

    A refusal is a fact about the world (no load balancer in front of the target, no cgroup
    the controller may write), not a safety decision: the executor records the action as
    failed with the reason, never applies it, and a ladder moves on; a learning policy is
    never offered a refused action.
    """

    def refusal(self, kind: ActionKind, target: str, params: Mapping[str, Any] = EMPTY) -> str | None:
        """Why ``kind`` cannot be carried out on ``target``, or None when it can be tried."""
        ...


def refusal_of(actuator: object, kind: ActionKind, target: str, params: Mapping[str, Any] = EMPTY) -> str | None:
    """``actuator``'s refusal of ``kind`` on ``target`` (None for an actuator that refuses nothing)."""
    return actuator.refusal(kind, target, params) if isinstance(actuator, Refusing) else None


class ActuatorRouter:
    """Routes each action to the actuator registered for its target's kind."""

    def __init__(self, kind_of: Callable[[TargetId], str], actuators: Mapping[str, Actuator]) -> None:
        self._kind_of = kind_of
        self._actuators = dict(actuators)

    def _for(self, target: TargetId) -> Actuator:
        kind = self._kind_of(target)
        try:
            return self._actuators[kind]
        except KeyError:
            raise ConfigError(f"no actuator for target kind {kind!r}", where=str(target)) from None

    def knows(self, target: TargetId) -> bool:
        """Whether ``target`` has a kind with a registered actuator (unknown targets have none)."""
        try:
            return self._kind_of(target) in self._actuators
        except (KeyError, LookupError):
            return False

    def refusal(self, kind: ActionKind, target: str, params: Mapping[str, Any] = EMPTY) -> str | None:
        """The refusal of the actuator for ``target``'s kind (none for an unknown target: it is denied elsewhere)."""
        if not self.knows(TargetId(target)):
            return None
        return refusal_of(self._for(TargetId(target)), kind, target, params)

    async def apply(self, action: Action) -> Outcome:
        """Apply through the actuator of the action's target kind."""
        return await self._for(action.target).apply(action)

    async def observe(self, target: TargetId) -> TargetState:
        """Observe through the actuator of the target's kind."""
        return await self._for(target).observe(target)
