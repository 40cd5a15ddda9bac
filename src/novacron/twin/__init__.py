"""The digital twin: a vectorised fleet simulator with an event heap, physics models and what-if.

Build a fleet (:func:`build_fleet` or :meth:`Topology.create`), run it with a
:class:`Simulator` (fixed-step numpy physics, an event heap for faults and actions, a
built-in healer), drive controller code on its :class:`SimClock`, ask :func:`what_if`
before acting, project a day ahead with :func:`forecast`, and predict detection and repair
times of the demo fleet with :func:`predict_mttx`.
"""

from novacron.twin.clock import SimClock
from novacron.twin.faults import TwinAction, TwinFault
from novacron.twin.fidelity import DemoFleetParams, predict_mttx, simulate_mttx
from novacron.twin.forecast import ForecastRow, forecast
from novacron.twin.healer import BuiltinHealer, with_healer
from novacron.twin.params import HealerParams, PhysicsParams
from novacron.twin.records import FaultRecord, RunSummary
from novacron.twin.sim import DEFAULT_FAULT_MIX, Simulator
from novacron.twin.state import FleetState, VmStatus
from novacron.twin.topology import Topology, build_fleet
from novacron.twin.whatif import CostModel, PlannedAction, WhatIfResult, rank_actions, what_if
from novacron.twin.workload import Burst, SyntheticWorkload, TraceWorkload, burst_arrivals

__all__ = [
    "DEFAULT_FAULT_MIX",
    "BuiltinHealer",
    "Burst",
    "CostModel",
    "DemoFleetParams",
    "FaultRecord",
    "FleetState",
    "ForecastRow",
    "HealerParams",
    "PhysicsParams",
    "PlannedAction",
    "RunSummary",
    "SimClock",
    "Simulator",
    "SyntheticWorkload",
    "Topology",
    "TraceWorkload",
    "TwinAction",
    "TwinFault",
    "VmStatus",
    "WhatIfResult",
    "build_fleet",
    "burst_arrivals",
    "forecast",
    "predict_mttx",
    "rank_actions",
    "simulate_mttx",
    "what_if",
    "with_healer",
]
