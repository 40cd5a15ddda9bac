"""The one composition root: the real controller and the simulated one, built by one function.

:func:`~novacron.runtime.compose.compose` wires the healing flow (health, incidents,
executor, gate, event consumers) for both :class:`Controller` (local processes) and
:class:`SimController` (the twin's fleet on a simulated event loop). The what-if advisor
and the twin mirror attach to either from outside.
"""

from novacron.runtime.controller import Controller, TargetView
from novacron.runtime.simcontroller import SimController, SimTargets
from novacron.runtime.simloop import SimEventLoop, run_simulated

__all__ = ["Controller", "SimController", "SimEventLoop", "SimTargets", "TargetView", "run_simulated"]
