"""The one composition root: the real controller and the simulated one, built by one function.

:func:`~novacron.runtime.compose.compose` wires the healing flow (health, incidents,
executor, gate, event consumers) for both :class:`Controller` (local processes) and
:class:`SimController` (the twin's fleet on a simulated event loop). The what-if advisor
and the twin mirror attach to either from outside.

Names load on first use (PEP 562): ``novacron run`` imports the process controller alone,
not the simulator and the twin's numpy (tens of megabytes a supervisor does not need).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from novacron.runtime.controller import Controller, TargetView
    from novacron.runtime.simcontroller import SimController, SimTargets
    from novacron.runtime.simloop import SimEventLoop, run_simulated

__all__ = ["Controller", "SimController", "SimEventLoop", "SimTargets", "TargetView", "run_simulated"]

_HOMES = {
    "Controller": "controller",
    "TargetView": "controller",
    "SimController": "simcontroller",
    "SimTargets": "simcontroller",
    "SimEventLoop": "simloop",
    "run_simulated": "simloop",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'novacron.runtime' has no attribute {name!r}")
    return getattr(importlib.import_module(f"novacron.runtime.{_HOMES[name]}"), name)
