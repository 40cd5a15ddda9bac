"""QEMU guests (``kind: vm`` targets): start, stop, restart, replace, migrate, snapshot, roll back, resize.

Each replica of a vm target is one QEMU process on one of the fleet's hosts, driven over
QMP. Its start and exit are reported to the same listener as local processes (the
controller), so health, faults and verification work unchanged; QMP events a process
exit cannot show — the guest powering off, resetting or panicking by itself, a pause we
did not ask for, a disk I/O error, a watchdog — become failed ``qmp`` observations at
once. A restart is a ``system_reset`` while QEMU runs, a cold start when QEMU is gone —
or, for a guest with ``vm.restart: warm``, a new QEMU resuming the state saved once the
guest was first healthy (``qemu_warm.py``; a cold start with the reason when it cannot).
The ladder's ``replace`` is the cold restart when the guest does not come back;
migrations, snapshots and rollbacks hand the guest's port forwards from the old QEMU to
the new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import psutil

from novacron.actuators.process import ENV_FLEET, ENV_NONCE, ProcessListener, SpawnJournal
from novacron.actuators.qemu_accel import Accel, qemu_binary, resolve_accel
from novacron.actuators.qemu_cmd import LaunchPlan, console_log, resolve_forwards
from novacron.actuators.qemu_hosts import HostBook
from novacron.actuators.qemu_ops import GuestOps
from novacron.actuators.qemu_qmp import QmpError
from novacron.actuators.qemu_vm import QemuProcess
from novacron.actuators.qemu_warm import WarmRestore, WarmRestoreError
from novacron.clock import Clock
from novacron.errors import ActuatorError, ConfigError
from novacron.model import Action, ActionKind, Observation, Outcome, TargetId, TargetState
from novacron.placement import Evacuee
from novacron.settings import FleetSpec, HeartbeatCheck, TargetSpec, VmHostSpec, VmSpec

__all__ = ["GUEST_FAULT_EVENTS", "QemuActuator"]

# QMP events that mean the guest is in trouble when the guest (not we) caused them.
GUEST_FAULT_EVENTS = frozenset({"SHUTDOWN", "RESET", "GUEST_PANICKED", "STOP", "BLOCK_IO_ERROR", "WATCHDOG"})
_START_TIMEOUT_S = 15.0
ENV_VM_HOST = "NOVACRON_VM_HOST"  # in QEMU's environment: the host it runs on (for a restarted controller)


def _local_host() -> VmHostSpec:
    """Without declared hosts, this machine is the one host: its memory, its cores ×4 vCPUs."""
    memory = psutil.virtual_memory().total >> 20
    return VmHostSpec(name="local", memory_mib=max(64, memory), cpus=max(1, (os.cpu_count() or 1) * 4))


class QemuActuator:
    """The actuator for ``kind: vm`` targets."""

    def __init__(
        self,
        spec: FleetSpec,
        *,
        clock: Clock,
        log_dir: Path,
        listener: ProcessListener,
        observe: Callable[[Observation], None] | None = None,
        heartbeat_port: Callable[[], int] = lambda: 0,
    ) -> None:
        self._specs = {t.name: t for t in spec.targets if t.kind == "vm"}
        self._clock = clock
        self._log_dir = log_dir
        self._listener = listener
        self._observe = observe or (lambda _obs: None)
        self._heartbeat_port = heartbeat_port
        self.hosts = HostBook(spec.hosts or [_local_host()], blast_radius=spec.policy.blast_radius)
        self._binary = qemu_binary() if self._specs else ""
        self._check(spec)
        self.accel: dict[str, Accel] = {
            name: resolve_accel(t.vm.accel, self._binary, t.vm.kernel)
            for name, t in self._specs.items()
            if t.vm is not None
        }
        self._vms: dict[str, dict[int, QemuProcess]] = {name: {} for name in self._specs}
        # QEMUs launched and not (yet) a guest's, per target: the action that launched one (a
        # restore, a migration's destination) ends it if it ends first, cancelled or failed.
        self._loose: dict[str, set[QemuProcess]] = {}
        self._desired = {name: t.replicas for name, t in self._specs.items()}
        self._sockets = Path(tempfile.mkdtemp(prefix="novacron-qmp-")) if self._specs else Path()
        self._generation = 0
        self._paused_by_us: set[int] = set()  # pids we pause on purpose (migration, snapshot)
        self.ops = GuestOps(self, log_dir.parent / "snapshots")
        self.warm = WarmRestore(self, log_dir.parent / "warm")
        self._locks: dict[str, asyncio.Lock] = {}
        self._journal: SpawnJournal | None = None
        self._fleet_id = ""
        # Told when every guest of a host ended at once: the host has failed (runtime/vmfailover.py).
        self.on_host_failed: Callable[[str, str], None] = lambda _host, _why: None
        log_dir.mkdir(parents=True, exist_ok=True)

    # -- checks before anything starts -------------------------------------------------
    def _check(self, spec: FleetSpec) -> None:
        for i, t in enumerate(spec.targets):
            if t.vm is None:
                continue
            for field in ("kernel", "initrd", "image"):
                path = getattr(t.vm, field)
                if path is not None and not Path(path).is_file():
                    raise ConfigError(f"{path} does not exist", where=f"targets[{i}].vm.{field}")
            capacity = self.hosts.use(t.vm.host).spec
            if t.vm.memory_mib * t.replicas > capacity.memory_mib:
                raise ConfigError(
                    f"{t.vm.memory_mib} MiB × {t.replicas} replicas is more than host {capacity.name} has "
                    f"({capacity.memory_mib} MiB)",
                    where=f"targets[{i}].vm.memory_mib",
                )

    # -- the Actuator contract ---------------------------------------------------------
    async def apply(self, action: Action) -> Outcome:
        """Carry out one action; failures are reported in the outcome, not raised."""
        started = self._clock.now()
        handler = self._handlers().get(action.kind)
        if handler is None:
            return Outcome(action.id, False, started, self._clock.now(), f"vm targets cannot {action.kind}")
        try:
            # One action at a time per target: a restart must not race a migration's hand-over.
            async with self.lock(action.target):
                try:
                    detail, data = await handler(action)
                finally:
                    self._end_loose(action.target)
        except (ActuatorError, ConfigError, OSError, ValueError, KeyError) as exc:
            return Outcome(action.id, False, started, self._clock.now(), f"{action.kind} failed: {exc}")
        data = {"pids": list(self.pids(action.target)), **data}
        return Outcome(action.id, True, started, self._clock.now(), detail, data)

    async def observe(self, target: TargetId) -> TargetState:
        """Guests running versus desired."""
        pids = self.pids(target)
        return TargetState(target, running=len(pids), desired=self._desired.get(target, 0), pids=pids)

    # -- queries -----------------------------------------------------------------------
    @property
    def binary(self) -> str:
        """The QEMU binary guests run on."""
        return self._binary

    def warm_targets(self) -> set[str]:
        """The targets whose guests restart warm (``vm.restart: warm``)."""
        return {name for name, t in self._specs.items() if t.vm is not None and t.vm.restart == "warm"}

    def lock(self, target: str) -> asyncio.Lock:
        """The target's action lock: one action (or a warm save) at a time per target."""
        return self._locks.setdefault(target, asyncio.Lock())

    def pids(self, target: str) -> tuple[int, ...]:
        """The QEMU pids of the target's running guests."""
        return tuple(p.pid for p in self._vms.get(target, {}).values() if p.pid is not None and p.alive)

    def pid_of(self, target: str, replica: int) -> int | None:
        """The QEMU pid of one guest, if it runs."""
        proc = self._vms.get(target, {}).get(replica)
        return proc.pid if proc is not None and proc.alive else None

    def desired(self, target: str) -> int:
        """How many guests the target should have."""
        return self._desired[target]

    def spec_of(self, target: str) -> TargetSpec:
        """The target spec the actuator currently runs."""
        return self._specs[target]

    def set_target_spec(self, tspec: TargetSpec) -> None:
        """Run ``tspec`` from the next cold start of the target's guests on.

        A changed vm block drops the target's saved warm state: it was saved for the old one.
        """
        old = self._specs.get(tspec.name)
        if old is not None and old.vm != tspec.vm:
            self.warm.forget(tspec.name, why="the vm spec changed")
        self._specs[tspec.name] = tspec
        self._vms.setdefault(tspec.name, {})
        self._desired.setdefault(tspec.name, tspec.replicas)

    def process(self, target: str, replica: int = 0) -> QemuProcess:
        """The running QEMU of one guest (for QMP commands of operators and tests)."""
        proc = self._vms.get(target, {}).get(replica)
        if proc is None or not proc.alive:
            raise ActuatorError(f"{target}#{replica} is not running")
        return proc

    def host_of(self, target: str, replica: int = 0) -> str | None:
        """The host a guest is placed on."""
        return self.hosts.host_of(_key(target, replica))

    def vm_of(self, target: str) -> VmSpec:
        """The vm block of a target."""
        vm = self._specs[target].vm
        assert vm is not None  # only vm targets are held here
        return vm

    def running(self, target: str, replica: int = 0) -> QemuProcess | None:
        """The guest's QEMU if it runs."""
        proc = self._vms.get(target, {}).get(replica)
        return proc if proc is not None and proc.alive else None

    @contextlib.contextmanager
    def pausing(self, proc: QemuProcess) -> Iterator[None]:
        """The guest is paused on purpose meanwhile (a migration's last copy): its STOP is no fault."""
        assert proc.pid is not None
        self._paused_by_us.add(proc.pid)
        try:
            yield
        finally:
            self._paused_by_us.discard(proc.pid)

    def use_journal(self, journal: SpawnJournal, *, fleet_id: str) -> None:
        """Record every guest's QEMU pid (``novacron status`` shows it) and mark QEMU with ``fleet_id``.

        A QEMU left running by a controller that died carries the mark, so the next
        controller of the fleet finds it and ends it before booting the guest afresh.
        """
        self._journal, self._fleet_id = journal, fleet_id

    # -- lifecycle ---------------------------------------------------------------------
    async def start_all(self, *, skip: Collection[str] = ()) -> None:
        """Start every desired guest not running (except ``skip``); one that cannot start is reported, not raised."""
        for name in self._specs:
            if name in skip:
                continue
            for replica in range(self._desired[name]):
                # Under the target's lock, as actions: a launch is never another's loose QEMU.
                async with self.lock(name):
                    if self.pid_of(name, replica) is None:
                        await self._start_reporting(name, replica)

    async def stop_all(self) -> None:
        """Stop every guest (QMP quit, then SIGKILL) and remove the QMP sockets."""
        await self.warm.close()
        for target in list(self._loose):
            self._end_loose(target)
        for target, reps in self._vms.items():
            for replica, proc in list(reps.items()):
                await proc.quit()
                if self._journal is not None:
                    self._journal.forget(target, replica)
        if self._specs:
            shutil.rmtree(self._sockets, ignore_errors=True)

    async def fail_host(self, host: str) -> list[Evacuee[tuple[str, int]]]:
        """Take ``host`` out: mark it failed, end its QEMUs; its guests, to be placed elsewhere.

        The guests' ends are reported as expected (the host's failure is the fault, and
        the failover that follows is the remedy); each then needs a place
        (:meth:`take_places`) and a ``vm_migrate`` from ``host``, which finds its QEMU
        gone and cold-starts it on its new host.
        """
        self.hosts.mark_failed(host)
        guests = self.guests_of(host)
        for target, replica in guests:
            proc = self.running(target, replica)
            if proc is not None:
                self.retire(target, replica, proc)
                await proc.kill()
        return [
            Evacuee((t, r), self.vm_of(t).memory_mib, self.vm_of(t).cpus, self.vm_of(t).priority) for t, r in guests
        ]

    def guests_of(self, host: str) -> list[tuple[str, int]]:
        """The guests (target, replica) placed on ``host``."""
        return sorted(_split(key) for key in self.hosts.guests_on(host))

    def take_places(self, plan: Iterable[tuple[tuple[str, int], str | None]]) -> None:
        """Hold each guest's planned host (none: it is placed nowhere), before any of them boots.

        Taken all at once, so the guests' moves — run side by side — never give a lower
        priority the place the plan gave a higher one.
        """
        for (target, replica), to in plan:
            vm = self.vm_of(target)
            if to is None:
                self.hosts.remove(_key(target, replica))
            else:
                self.hosts.place(_key(target, replica), to, vm.memory_mib, vm.cpus)

    # -- action handlers ---------------------------------------------------------------
    def _handlers(self) -> dict[ActionKind, Callable[[Action], Awaitable[tuple[str, dict[str, Any]]]]]:
        return {
            ActionKind.START: self._do_start,
            ActionKind.STOP: self._do_stop,
            ActionKind.RESTART: self._do_restart,
            ActionKind.REPLACE: self._do_replace,
            ActionKind.CONFIG_ROLLBACK: self._do_config_rollback,
            ActionKind.VM_MIGRATE: self.ops.migrate,
            ActionKind.VM_SNAPSHOT: self.ops.snapshot,
            ActionKind.VM_ROLLBACK: self.ops.rollback,
            ActionKind.VM_RESIZE: self.ops.resize,
        }

    def _selected(self, action: Action) -> list[int]:
        if "replicas" in action.params:
            return [int(r) for r in action.params["replicas"]]
        if "replica" in action.params:
            return [int(action.params["replica"])]
        return list(range(self._desired[action.target]))

    async def _do_start(self, action: Action) -> tuple[str, dict[str, Any]]:
        started = []
        for replica in self._selected(action):
            if self.pid_of(action.target, replica) is None:
                await self.cold_start(action.target, replica)
                started.append(replica)
        return (f"started guests {started}" if started else "already running"), {}

    async def _do_stop(self, action: Action) -> tuple[str, dict[str, Any]]:
        for replica in self._selected(action):
            proc = self._vms[action.target].get(replica)
            if proc is not None:
                await proc.quit()
        return f"stopped guests {self._selected(action)}", {}

    def _left_to_failover(self, target: str, replica: int) -> None:
        """Refuse to restart a guest whose host failed: the host failover moves it.

        A probe can see a guest's port close before its QEMU's exit is handled, so a
        restart may be asked while the whole host is going: it asks first whether the
        host's QEMUs all ended (declaring the host failed if so) rather than booting the
        guest somewhere in competition with the failover's plan.
        """
        proc = self._vms[target].get(replica)
        if proc is None or (_lives(proc) and not proc.retired):
            return
        if not proc.expected_exit and not proc.retired:
            self._host_down(proc.host)
        if self.hosts.use(proc.host).failed:
            raise ActuatorError(f"host {proc.host} failed: {target}#{replica} moves by the host failover")

    async def _do_restart(self, action: Action) -> tuple[str, dict[str, Any]]:
        how, kinds = [], {}
        for replica in self._selected(action):
            self._left_to_failover(action.target, replica)
            proc = self._vms[action.target].get(replica)
            if self.warm.enabled(action.target):
                line, kinds[str(replica)] = await self._warm_restart(action.target, replica, proc)
                how.append(f"{replica}: {line}")
            elif proc is not None and proc.alive and await self._reset(action.target, replica, proc):
                how.append(f"{replica}: system_reset")
                kinds[str(replica)] = {"kind": "reset"}
            else:
                await self.cold_start(action.target, replica)
                how.append(f"{replica}: cold start")
                kinds[str(replica)] = {"kind": "cold"}
        return f"restarted guests ({', '.join(how)})", {"restarts": kinds}

    async def _warm_restart(self, target: str, replica: int, proc: QemuProcess | None) -> tuple[str, dict[str, Any]]:
        """Resume the guest from its saved state (its QEMU ended first); a cold start, with the reason, if it cannot."""
        if proc is not None and proc.alive:
            await proc.kill()  # a hung guest: its QEMU goes, the saved state comes back
        self.warm.check_last_restore(target, replica)
        try:
            done = await self.warm.restore(target, replica, self._home(target, replica))
        except WarmRestoreError as exc:
            await self.cold_start(target, replica)
            return f"cold start (warm restore not possible: {exc})", {"kind": "cold", "fallback": str(exc)}
        age = time.time() - done.state.saved_at
        line = (
            f"warm restore from the state saved {age:.0f}s ago ({done.state.bytes} bytes; QEMU up in "
            f"{done.launch_ms:.0f} ms, state loaded in {done.load_ms:.0f} ms)"
        )
        figures = {"launch_ms": done.launch_ms, "load_ms": done.load_ms, "state_bytes": done.state.bytes}
        return line, {"kind": "warm", "state_age_s": round(age, 1), **figures}

    async def _do_replace(self, action: Action) -> tuple[str, dict[str, Any]]:
        for replica in self._selected(action):
            self._left_to_failover(action.target, replica)
            self.warm.check_last_restore(action.target, replica)
            proc = self._vms[action.target].get(replica)
            if proc is not None:
                await proc.kill()
            await self.cold_start(action.target, replica)
        kinds = {str(r): {"kind": "cold"} for r in self._selected(action)}
        return f"cold-restarted guests {self._selected(action)}", {"restarts": kinds}

    async def _do_config_rollback(self, action: Action) -> tuple[str, dict[str, Any]]:
        self.set_target_spec(TargetSpec.model_validate(action.params["target_spec"]))
        await self._do_replace(action)
        return f"running config version {action.params.get('version', '?')}", {}

    # -- mechanics ---------------------------------------------------------------------
    async def _reset(self, target: str, replica: int, proc: QemuProcess) -> bool:
        """``system_reset`` (and ``cont`` if paused); False when QMP no longer answers."""
        try:
            await proc.execute("system_reset")
            if await proc.status() != "running":
                await proc.execute("cont")
        except QmpError:
            return False
        assert proc.pid is not None
        self._announce(target, replica, proc)
        return True

    async def _start_reporting(self, target: str, replica: int) -> None:
        try:
            await self.cold_start(target, replica)
        except (ActuatorError, ConfigError, OSError, ValueError) as exc:
            self._listener.on_spawn_failed(target, replica, f"cannot start: {exc}")

    async def cold_start(self, target: str, replica: int, host: str | None = None) -> QemuProcess:
        """A fresh QEMU for the guest, on ``host`` or its current (else its spec's, else any fitting) host."""
        tspec = self._specs[target]
        assert tspec.vm is not None
        old = self._vms[target].get(replica)
        if old is not None and old.alive:
            await old.quit()
        host = host or self._home(target, replica)
        proc = await self.launch(target, replica, host)
        self.install(target, replica, proc)
        return proc

    def _home(self, target: str, replica: int) -> str:
        tspec = self._specs[target]
        assert tspec.vm is not None
        key, vm = _key(target, replica), tspec.vm
        for host in (self.hosts.host_of(key), vm.host):
            if host is not None and self.hosts.why_not(host, vm.memory_mib, vm.cpus, guest=key) is None:
                return host
        picked = self.hosts.pick(vm.memory_mib, vm.cpus)
        if picked is None:
            raise ActuatorError(f"no host can take {key}: {self.hosts.why_not(vm.host, vm.memory_mib, vm.cpus)}")
        return picked

    def plan_for(self, target: str, replica: int, *, incoming: str | None = None) -> LaunchPlan:
        """How the guest's next QEMU is launched (a fresh QMP socket every time)."""
        tspec = self._specs[target]
        assert tspec.vm is not None
        self._generation += 1
        return LaunchPlan(
            qmp_socket=self._sockets / f"{target}-{replica}-{self._generation}.qmp",
            serial_log=self._log_dir / f"{target}-{replica}.serial",
            accel=self.accel[target].name if target in self.accel else "tcg",
            forwards=resolve_forwards(tspec.vm.forwards, tspec.port, replica),
            append=self._append(tspec, replica),
            heartbeat_port=self._heartbeat_port() if _beats(tspec) else None,
            incoming=incoming,
        )

    def _append(self, tspec: TargetSpec, replica: int) -> str:
        """The serial console, and for guests that push heartbeats their name and rhythm."""
        beat = _beats(tspec)
        if beat is None:
            return "console=ttyS0"
        interval = max(0.05, beat.expected_interval_s / 2)  # twice per expected interval: one loss is no suspicion
        return f"console=ttyS0 novacron.name={tspec.name}#{replica} novacron.hbi={interval:g}"

    async def launch(
        self, target: str, replica: int, host: str, *, incoming: str | None = None, plan: LaunchPlan | None = None
    ) -> QemuProcess:
        """Start a QEMU for the guest on ``host`` (as ``plan`` says, if given); the guest's only once installed."""
        tspec = self._specs[target]
        assert tspec.vm is not None
        why = self.hosts.why_not(host, tspec.vm.memory_mib, tspec.vm.cpus, guest=_key(target, replica))
        if why is not None:
            raise ActuatorError(why)
        plan = plan or self.plan_for(target, replica, incoming=incoming)
        proc = QemuProcess(f"{target}#{replica}", tspec.vm, plan, host)

        def on_event(p: QemuProcess, event: str, data: Mapping[str, Any]) -> None:
            self._on_event(target, replica, p, event, data)

        def on_exit(p: QemuProcess, code: int | None) -> None:
            self._on_exit(target, replica, p, code)

        env = {ENV_NONCE: uuid.uuid4().hex, ENV_FLEET: self._fleet_id, ENV_VM_HOST: host} if self._fleet_id else {}
        proc.nonce = env.get(ENV_NONCE, "")
        loose = self._loose.setdefault(target, set())
        loose.add(proc)  # before the first await: a cancelled caller never leaves it running unseen
        try:
            await proc.launch(self._binary, on_event, on_exit, env=env, timeout=_START_TIMEOUT_S)
        except BaseException:
            loose.discard(proc)  # it ended with its launch
            raise
        return proc

    def _end_loose(self, target: str) -> None:
        """SIGKILL the target's QEMUs launched and never made a guest's (their action ended without them)."""
        for proc in self._loose.pop(target, set()):
            proc.kill_now()

    async def adopt(self, target: str, replica: int, pid: int) -> bool:
        """Take over the guest's QEMU a previous controller left running, instead of booting a second one.

        Its QMP socket, console file, memory and vCPUs are read from its command line, its
        host from its environment; it is adopted if QMP answers and the guest runs (or is
        paused: its checks then decide). False when it cannot be: the caller ends it.
        """
        tspec = self._specs.get(target)
        if tspec is None or tspec.vm is None or replica >= self._desired[target]:
            return False
        try:
            found = psutil.Process(pid)
            argv, env = found.cmdline(), found.environ()
        except psutil.Error:
            return False
        plan = self._plan_from(tspec, replica, argv)
        if plan is None:
            return False
        host = env.get(ENV_VM_HOST) or tspec.vm.host
        if host not in self.hosts.names():
            return False
        proc = QemuProcess(f"{target}#{replica}", tspec.vm, plan, host)
        proc.nonce = env.get(ENV_NONCE, "")

        def on_event(p: QemuProcess, event: str, data: Mapping[str, Any]) -> None:
            self._on_event(target, replica, p, event, data)

        def on_exit(p: QemuProcess, code: int | None) -> None:
            self._on_exit(target, replica, p, code)

        try:
            state = await proc.attach(pid, on_event, on_exit)
        except QmpError:
            return False
        if state not in ("running", "paused"):
            await proc.kill()  # a migration's half (inmigrate, postmigrate) or a guest that shut down
            return False
        self.install(target, replica, proc)
        return True

    def _plan_from(self, tspec: TargetSpec, replica: int, argv: list[str]) -> LaunchPlan | None:
        """The launch plan a running QEMU was started with, from its command line."""
        assert tspec.vm is not None
        args = dict(zip(argv, [*argv[1:], ""], strict=True))
        qmp, serial = args.get("-qmp", ""), console_log(argv)
        if not qmp.startswith("unix:") or serial is None:
            return None
        beat = re.search(r"udp,id=hb0,host=[^,]*,port=(\d+)", " ".join(argv))
        try:
            memory, cpus = int(args.get("-m", "")), int(args.get("-smp", "").split(",")[0])
        except ValueError:
            return None
        return LaunchPlan(
            qmp_socket=Path(qmp.removeprefix("unix:").split(",")[0]),
            serial_log=serial,
            accel="kvm" if "accel=kvm" in args.get("-machine", "") else "tcg",
            forwards=resolve_forwards(tspec.vm.forwards, tspec.port, replica),
            # The launch's own part: qemu_argv puts the spec's command line ahead of it.
            append=args.get("-append", "").removeprefix(tspec.vm.append).strip(),
            heartbeat_port=int(beat.group(1)) if beat else None,
            memory_mib=memory,
            cpus=cpus,
        )

    def install(self, target: str, replica: int, proc: QemuProcess) -> None:
        """Make ``proc`` the guest's QEMU: placed on its host, announced to the listener."""
        tspec = self._specs[target]
        assert tspec.vm is not None
        self._vms[target][replica] = proc
        self._loose.get(target, set()).discard(proc)
        self.hosts.place(_key(target, replica), proc.host, tspec.vm.memory_mib, tspec.vm.cpus)
        self._announce(target, replica, proc)

    def retire(self, target: str, replica: int, proc: QemuProcess) -> None:
        """The guest's QEMU is about to be replaced on purpose: report its end now.

        Health then ignores the probes that fail while the guest switches QEMUs (the
        final pause of a migration, the forwards' hand-over) instead of raising a fault,
        and the replacement proves itself healthy when it is installed.
        """
        if proc.pid is not None and not proc.retired:
            proc.retired = proc.expected_exit = True
            self._listener.on_exited(target, replica, proc.pid, None, True)

    def reinstate(self, target: str, replica: int, proc: QemuProcess) -> None:
        """A replacement failed: the retired QEMU is the guest's again and proves itself anew."""
        proc.retired = proc.expected_exit = False
        self._announce(target, replica, proc)

    def _announce(self, target: str, replica: int, proc: QemuProcess) -> None:
        assert proc.pid is not None
        port = proc.plan.forwards[0][0] if proc.plan.forwards else None
        created = _create_time(proc.pid)
        if self._journal is not None:
            self._journal.spawned(target, replica, proc.pid, created, port, proc.nonce)
        self._listener.on_started(target, replica, proc.pid, port, created)

    def _on_exit(self, target: str, replica: int, proc: QemuProcess, code: int | None) -> None:
        if self._vms.get(target, {}).get(replica) is not proc or proc.pid is None or proc.retired:
            return  # a destination that never took over, or a QEMU whose end was told already
        if not proc.expected_exit and self._host_down(proc.host):
            return
        self._listener.on_exited(target, replica, proc.pid, code, proc.expected_exit)

    def _host_down(self, host: str) -> bool:
        """Every QEMU of ``host`` (two or more) is gone at once: the host failed, not each guest.

        Asked at a guest's unexpected end: if the others' processes are gone too (exited,
        or dead and not yet reaped), their ends are told as expected — the host's failure
        is the fault, and the failover that follows is the remedy.
        """
        guests = [_split(k) for k in self.hosts.guests_on(host)]
        procs = [self._vms.get(t, {}).get(r) for t, r in guests]
        if len(guests) < 2 or self.hosts.use(host).failed or any(p is None or _lives(p) for p in procs):
            return False
        for (target, replica), proc in zip(guests, procs, strict=True):
            assert proc is not None
            self.retire(target, replica, proc)
        self.hosts.mark_failed(host)
        self.on_host_failed(host, f"all {len(guests)} QEMU processes of host {host} ended")
        return True

    def _on_event(self, target: str, replica: int, proc: QemuProcess, event: str, data: Mapping[str, Any]) -> None:
        if self._vms.get(target, {}).get(replica) is not proc or event not in GUEST_FAULT_EVENTS:
            return
        if event in ("SHUTDOWN", "RESET") and not data.get("guest"):
            return  # one we asked for (quit, system_reset)
        if event == "STOP" and proc.pid in self._paused_by_us:
            return
        detail = f"QMP {event}" + (f" ({data['reason']})" if "reason" in data else "")
        self._observe(
            Observation(TargetId(target), "qmp", self._clock.now(), healthy=False, replica=replica, detail=detail)
        )


def _beats(tspec: TargetSpec) -> HeartbeatCheck | None:
    return next((c for c in tspec.checks if isinstance(c, HeartbeatCheck)), None)


def _key(target: str, replica: int) -> str:
    return f"{target}#{replica}"


def _split(key: str) -> tuple[str, int]:
    target, _, replica = key.rpartition("#")
    return target, int(replica)


def _lives(proc: QemuProcess) -> bool:
    """The QEMU process still runs: not a zombie (dead, not yet reaped), and no SIGKILL pending.

    A host's QEMUs killed together die one after the other: one whose SIGKILL is sent but
    not yet acted on is as good as dead.
    """
    if not proc.alive or proc.pid is None:
        return False
    try:
        if psutil.Process(proc.pid).status() == psutil.STATUS_ZOMBIE:
            return False
    except psutil.Error:
        return False
    return not _sigkill_pending(proc.pid)


def _sigkill_pending(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    pending = 0
    for line in status.splitlines():
        if line.startswith(("SigPnd:", "ShdPnd:")):
            pending |= int(line.split()[1], 16)
    return bool(pending & (1 << (signal.SIGKILL - 1)))


def _create_time(pid: int) -> float:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return 0.0
