"""Agent registration: the built-in agents and any installed through entry points.

A third-party package adds an agent by declaring, in its ``pyproject.toml``::

    [project.entry-points."novacron.agents"]
    myagent = "mypackage.agents:MyAgent"

where ``MyAgent()`` builds an object with ``name``, ``interval_s`` and
``run(context) -> AgentOutput``. NovaCron's own agents are declared the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points

from novacron.agents.base import Agent
from novacron.errors import ConfigError, InputError

__all__ = ["ENTRY_POINT_GROUP", "AgentRegistry", "default_registry"]

ENTRY_POINT_GROUP = "novacron.agents"
Factory = Callable[[], Agent]


class AgentRegistry:
    """Agent factories by name (pass one in, or use :func:`default_registry`)."""

    def __init__(self) -> None:
        self._factories: dict[str, Factory] = {}

    def register(self, name: str, factory: Factory) -> None:
        """Add or replace an agent factory."""
        self._factories[name] = factory

    def names(self) -> list[str]:
        """Registered agent names, sorted."""
        return sorted(self._factories)

    def create(self, name: str) -> Agent:
        """A new agent instance; InputError naming the agent if unknown or broken."""
        try:
            factory = self._factories[name]
        except KeyError:
            raise InputError(f"no agent {name!r} (known: {', '.join(self.names())})", where="agent") from None
        agent = factory()
        if not isinstance(agent, Agent):
            raise ConfigError(f"{name!r} does not build an agent (name, interval_s, run)", where=f"agents.{name}")
        return agent


def _builtins() -> dict[str, Factory]:
    from novacron.agents.bugfix import BugFixAgent  # noqa: PLC0415 - imports the fixer
    from novacron.agents.capacity import CapacityAgent  # noqa: PLC0415
    from novacron.agents.circuit import CircuitAgent  # noqa: PLC0415
    from novacron.agents.exhaustion import ExhaustionAgent  # noqa: PLC0415
    from novacron.agents.scaling import ScalingAgent  # noqa: PLC0415

    return {
        "exhaustion": ExhaustionAgent,
        "capacity": CapacityAgent,
        "scaling": ScalingAgent,
        "circuit": CircuitAgent,
        "bugfix": BugFixAgent,
    }


def default_registry() -> AgentRegistry:
    """The built-in agents plus every ``novacron.agents`` entry point installed."""
    reg = AgentRegistry()
    for name, factory in _builtins().items():
        reg.register(name, factory)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _builtins():
            continue  # our own declarations of the built-ins
        try:
            reg.register(ep.name, ep.load())
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"entry point {ep.value!r} cannot be loaded: {exc}", where=f"agents.{ep.name}") from exc
    return reg
