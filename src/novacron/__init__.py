"""NovaCron Autonomous: a self-healing control plane — detect, heal, verify, predict.

The names below are the stable public API. They are imported lazily, so that light
entry points (the demo service, ``novacron --help``) do not pay for the whole package.
"""

from __future__ import annotations

import importlib

# Not ``from typing import TYPE_CHECKING``: importing typing here would slow every light
# entry point (the demo service restarts in tens of milliseconds and counts each import).
TYPE_CHECKING = False

__version__ = "0.1.0"

_EXPORTS = {
    "Action": "novacron.model",
    "ActionKind": "novacron.model",
    "ActionStatus": "novacron.model",
    "Clock": "novacron.clock",
    "ConfigError": "novacron.errors",
    "Controller": "novacron.runtime.controller",
    "FakeClock": "novacron.clock",
    "Fault": "novacron.model",
    "FaultKind": "novacron.model",
    "FleetSpec": "novacron.settings",
    "Incident": "novacron.model",
    "IncidentStatus": "novacron.model",
    "InputError": "novacron.errors",
    "MonotonicClock": "novacron.clock",
    "NovacronError": "novacron.errors",
    "Observation": "novacron.model",
    "Outcome": "novacron.model",
    "Policy": "novacron.settings",
    "Prediction": "novacron.model",
    "Priority": "novacron.model",
    "RiskLevel": "novacron.model",
    "Store": "novacron.store",
    "TargetSpec": "novacron.settings",
    "load_spec": "novacron.settings",
}

__all__ = [
    "Action",
    "ActionKind",
    "ActionStatus",
    "Clock",
    "ConfigError",
    "Controller",
    "FakeClock",
    "Fault",
    "FaultKind",
    "FleetSpec",
    "Incident",
    "IncidentStatus",
    "InputError",
    "MonotonicClock",
    "NovacronError",
    "Observation",
    "Outcome",
    "Policy",
    "Prediction",
    "Priority",
    "RiskLevel",
    "Store",
    "TargetSpec",
    "__version__",
    "load_spec",
]

if TYPE_CHECKING:
    from novacron.clock import Clock, FakeClock, MonotonicClock
    from novacron.errors import ConfigError, InputError, NovacronError
    from novacron.model import (
        Action,
        ActionKind,
        ActionStatus,
        Fault,
        FaultKind,
        Incident,
        IncidentStatus,
        Observation,
        Outcome,
        Prediction,
        Priority,
        RiskLevel,
    )
    from novacron.runtime.controller import Controller
    from novacron.settings import FleetSpec, Policy, TargetSpec, load_spec
    from novacron.store import Store


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'novacron' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
