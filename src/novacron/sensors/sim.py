"""The ``sim://`` sensor: the twin's VMs seen the way the controller sees real services.

Each target is one twin VM. :meth:`SimSensor.probe` builds a
:data:`~novacron.sensors.probes.ProbeFn` for the real :class:`~novacron.sensors.probes.Prober`,
so probing, expediting and the health tracker are the production code. A probe behaves
like an HTTP health check against the VM would: a crashed or restarting VM refuses the
connection at once, a hung VM (or one on a powered-off or cut-off host, or slower than
the timeout) costs the full probe timeout, a full disk answers ``HTTP 500``, and a healthy
VM answers ``HTTP 200`` after the host's modelled latency. Crashes are also delivered the
moment they happen (:meth:`SimSensor.watch_exits`), as the pidfd exit watch does for
real processes. Time is the loop's, so under a simulated event loop the probe's wait is
simulated too.

Two faults live above the twin's VMs, in what a service makes of them: a target whose
upstream (``depends_on``) does not answer healthily answers ``HTTP 502`` itself, as the
demo services' health checks do; and a target given a bad configuration answers
``HTTP 503`` until its configuration is rolled back (a restart or a fresh VM keeps it).
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable, Mapping, Sequence

from novacron.errors import InputError
from novacron.model import Observation, TargetId
from novacron.sensors.probes import ProbeFn
from novacron.twin.sim import Simulator
from novacron.twin.state import VmStatus

__all__ = ["SIM_SCHEME", "SimSensor", "parse_sim_target", "sim_target"]

SIM_SCHEME = "sim://"
_REFUSED = (int(VmStatus.CRASHED), int(VmStatus.ACTING))
_Z99 = 2.3263478740408408  # the standard normal's 99th percentile


def sim_target(vm: int) -> TargetId:
    """The target name of twin VM ``vm`` (``vm-00042``)."""
    return TargetId(f"vm-{vm:05d}")


def parse_sim_target(text: str) -> int:
    """``sim://vm-00042``, ``vm-00042`` or ``42`` → VM index 42."""
    name = text.removeprefix(SIM_SCHEME).removeprefix("vm-")
    if not (name.isascii() and name.isdigit()):
        raise InputError(f"expected sim://vm-NNNNN, vm-NNNNN or a VM number, got {text!r}", where="target")
    return int(name)


class SimSensor:
    """Health probes and exit notifications for twin VMs, by target name."""

    def __init__(
        self,
        sim: Simulator,
        targets: Mapping[str, int],
        *,
        upstreams: Mapping[str, Sequence[str]] | None = None,
        latency_s: float | None = None,
        latencies: Mapping[str, tuple[float, float]] | None = None,
        seed: int = 0,
    ) -> None:
        """``upstreams`` maps a target to the targets it depends on (their failure is its).

        ``latency_s`` is a healthy answer's time (measured on the real fleet); the twin's
        physics then only adds what load costs beyond its idle latency. ``latencies`` gives
        a target its own answer times instead, as measured ``(p50, p99)``: each probe's is
        drawn from the log-normal distribution with those quantiles (real answer times have
        a long tail, and the prober's adaptive timeout is learned from it), from a
        generator seeded with ``seed``, apart from the simulator's.
        """
        for name, vm in targets.items():
            if not 0 <= vm < sim.topo.n_vms:
                raise InputError(f"VM {vm} is not in the twin (0..{sim.topo.n_vms - 1})", where=name)
        self.sim = sim
        self.targets = dict(targets)
        self._by_vm = {vm: name for name, vm in self.targets.items()}
        self.upstreams = {name: [u for u in (upstreams or {}).get(name, ()) if u in self.targets] for name in targets}
        self.bad_config: set[str] = set()
        self.latency_s = latency_s
        self._spread = {
            name: (math.log(p50), max(0.0, math.log(p99 / p50)) / _Z99)
            for name, (p50, p99) in (latencies or {}).items()
        }
        self._rng = random.Random(seed)
        self._idle = {name: self._physics_latency(name) for name in self.targets}

    def break_config(self, target: str) -> None:
        """Give ``target`` a bad configuration: it answers 503 until a config rollback."""
        self.vm(target)
        self.bad_config.add(target)

    def restore_config(self, target: str) -> bool:
        """Roll ``target``'s configuration back; True when it was bad."""
        was = target in self.bad_config
        self.bad_config.discard(target)
        return was

    def vm(self, target: str) -> int:
        """The VM behind ``target``."""
        try:
            return self.targets[target]
        except KeyError:
            raise InputError(f"not a sim target: {target!r}", where="target") from None

    def status(self, target: str) -> tuple[bool | None, str]:
        """What a probe would get now: (True, 200), (False, 5xx), (False, refused) or (None, no answer)."""
        ok, detail = self._vm_status(target)
        if ok is not True:
            return ok, detail
        if target in self.bad_config:
            return False, "HTTP 503: bad configuration"
        for upstream in self.upstreams[target]:
            answer = self.status(upstream)[0]
            if answer is None:  # a service waits on an upstream that does not answer
                return None, f"no answer: waiting on upstream {upstream}"
            if answer is False:
                return False, f"HTTP 502: upstream {upstream} failing"
        return True, detail

    def _vm_status(self, target: str) -> tuple[bool | None, str]:
        sim, vm = self.sim, self.vm(target)
        state = sim.state
        if int(state.status[vm]) in _REFUSED:
            return False, "ConnectionRefusedError: connection refused"
        host = int(state.vm_host[vm])
        reachable = sim.topo.n_links == 0 or bool(state.host_degree[host] > 0)
        if int(state.status[vm]) == int(VmStatus.HUNG) or not state.host_up[host] or not reachable:
            return None, "no answer"
        if state.disk_used_gb[host] >= sim.topo.host_disk_gb[host]:
            return False, "HTTP 500"
        return True, "HTTP 200"

    def latency(self, target: str) -> float:
        """The modelled response time of ``target``'s host (compute + storage + network)."""
        physics = self._physics_latency(target)
        spread = self._spread.get(target)
        if spread is not None:
            return math.exp(self._rng.gauss(*spread)) + max(0.0, physics - self._idle[target])
        if self.latency_s is None:
            return physics
        return self.latency_s + max(0.0, physics - self._idle[target])

    def _physics_latency(self, target: str) -> float:
        state, vm = self.sim.state, self.vm(target)
        host = int(state.vm_host[vm])
        return float(state.cpu_latency_of(vm) + state.io_latency_s[host] + state.net_latency_s[host])

    def probe(self, target: str) -> ProbeFn:
        """A probe function for the real Prober (time passes on the running loop)."""
        self.vm(target)

        async def run(timeout: float) -> tuple[bool, str]:
            ok, detail = self.status(target)
            if ok is None:
                await asyncio.sleep(timeout)
                raise TimeoutError
            if not ok:
                return False, detail
            latency = self.latency(target)
            if latency > timeout:
                await asyncio.sleep(timeout)
                raise TimeoutError
            await asyncio.sleep(latency)
            ok, detail = self.status(target)
            if ok is None:  # it stopped answering while the request was in flight
                await asyncio.sleep(timeout - latency)
                raise TimeoutError
            return ok, detail

        return run

    def observation(self, target: str, *, now: float, source: str = "sim") -> Observation:
        """One instantaneous reading (no waiting), e.g. for a state mirror or a test."""
        ok, detail = self.status(target)
        return Observation(TargetId(target), source, now, ok is True, latency_s=self.latency(target), detail=detail)

    def watch_exits(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(target)`` the moment one of our VMs' process dies."""

        def crashed(vm: int) -> None:
            name = self._by_vm.get(vm)
            if name is not None:
                callback(name)

        self.sim.on_vm_crashed.append(crashed)
