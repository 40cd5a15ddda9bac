"""Traffic for the controller: HAProxy for targets with a ``frontend:``, and the experiment runner.

Kept apart so the controller adds a few calls only, and so a fleet without frontends never
imports the statistics (numpy, scipy) the experiment runner needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from novacron.actuators.base import Actuator
from novacron.actuators.haproxy import HaproxyActuator
from novacron.actuators.traffic import TrafficSplit
from novacron.clock import Clock
from novacron.healing.executor import Executor
from novacron.settings import FleetSpec
from novacron.store import Store

if TYPE_CHECKING:
    from novacron.runtime.experiments import ExperimentRunner

__all__ = ["haproxy_for", "runner_for", "with_traffic"]


def haproxy_for(spec: FleetSpec, *, workdir: Path, clock: Clock) -> HaproxyActuator | None:
    """The HAProxy actuator when some target has a frontend, else None."""
    if not any(t.frontend is not None for t in spec.targets):
        return None
    return HaproxyActuator(spec, workdir=workdir / "haproxy", clock=clock)


def with_traffic(actuator: Actuator, haproxy: HaproxyActuator | None) -> Actuator:
    """``actuator``, with traffic actions sent to HAProxy when there is one."""
    return actuator if haproxy is None else TrafficSplit(actuator, haproxy)


def runner_for(
    spec: FleetSpec,
    *,
    haproxy: HaproxyActuator,
    executor: Executor,
    store: Store,
    clock: Clock,
    workdir: Path,
    config_version: int,
) -> ExperimentRunner:
    """The experiment runner over ``haproxy`` (imported here: it brings the statistics)."""
    from novacron.runtime.experiments import ExperimentRunner  # noqa: PLC0415  (numpy/scipy only when used)

    return ExperimentRunner(
        spec=spec,
        haproxy=haproxy,
        executor=executor,
        store=store,
        clock=clock,
        workdir=workdir,
        config_version=config_version,
    )
