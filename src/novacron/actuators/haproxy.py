"""HAProxy as an actuator: started from the fleet spec, steered live through its runtime API.

The actuator owns one HAProxy process for every target with a ``frontend:`` (configuration
from :mod:`~novacron.actuators.haproxy_config`). Actions change server weights and states
over the admin socket and read them back before they report success, so an action that
returns ok is in force. Its request log arrives on HAProxy's stdout and is handed to
subscribers (the experiment runner) one request at a time.

Action parameters: ``reroute``/``promote`` take ``weights`` ({server: 0..256}) and
``from_weights`` (what they replace, for the inverse); ``drain``, ``undrain``,
``open_circuit`` and ``close_circuit`` take ``server``, ``replica`` or ``replicas``.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from novacron.actuators.haproxy_config import backend_name, render_config, server_name
from novacron.clock import Clock
from novacron.errors import ActuatorError, ConfigError, InputError
from novacron.model import Action, ActionKind, Outcome, TargetId, TargetState
from novacron.settings import FleetSpec

__all__ = ["TRAFFIC_ACTIONS", "HaproxyActuator", "RequestListener"]

TRAFFIC_ACTIONS = frozenset(
    {
        ActionKind.REROUTE,
        ActionKind.PROMOTE,
        ActionKind.DRAIN,
        ActionKind.UNDRAIN,
        ActionKind.OPEN_CIRCUIT,
        ActionKind.CLOSE_CIRCUIT,
    }
)
_STATE_OF = {
    ActionKind.DRAIN: "drain",
    ActionKind.UNDRAIN: "ready",
    ActionKind.OPEN_CIRCUIT: "maint",
    ActionKind.CLOSE_CIRCUIT: "ready",
}
# srv_admin_state bits (HAProxy's SRV_ADMF_*): any maintenance bit, and the drain bits.
_MAINT_BITS = 0x01 | 0x02 | 0x04 | 0x20
_DRAIN_BITS = 0x08 | 0x10

RequestListener = Callable[[str, str, int, float], None]  # target, server, status, seconds


# The closing ALERT lines of every refusal: they say that it failed, not why.
_SUMMARY_ALERTS = ("Error(s) found in configuration file", "Fatal errors found in configuration")


def _alerts(output: str) -> str:
    """HAProxy's reasons for refusing a configuration (its ALERT lines), else the tail of what it said."""
    alerts = [line.split(" : ", 2)[-1].strip() for line in output.splitlines() if line.startswith("[ALERT]")]
    reasons = [a for a in alerts if a and not a.startswith(_SUMMARY_ALERTS)]
    return "; ".join(reasons) or output.strip()[-500:] or "(HAProxy said nothing)"


class HaproxyActuator:
    """Runs HAProxy for the fleet's frontends and carries out traffic actions on it."""

    def __init__(self, spec: FleetSpec, *, workdir: Path, clock: Clock, binary: str | None = None) -> None:
        self.spec = spec
        self._clock = clock
        # Absolute: HAProxy reads a socket path without a "/" as host:port (a relative workdir broke it).
        self._dir = workdir.absolute()
        self.socket_path = self._dir / "haproxy.sock"
        self._binary = binary
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.listeners: list[RequestListener] = []
        # Per (target, server): requests, 5xx answers, summed seconds — read from the request log.
        self.served: dict[tuple[str, str], list[float]] = {}
        self._targets = {f"be_{t.name}": t.name for t in spec.targets if t.frontend is not None}

    @property
    def targets(self) -> list[str]:
        """The targets with a frontend."""
        return list(self._targets.values())

    def fronted(self, target: str) -> bool:
        """Whether ``target`` has a frontend here."""
        return backend_name(target) in self._targets

    # -- lifecycle ---------------------------------------------------------------------
    async def check(self) -> tuple[str, Path]:
        """Write the configuration and have HAProxy check it; its binary and the file.

        A refusal is a :class:`ConfigError` with HAProxy's reasons. The controller checks
        before any target starts, so a spec HAProxy refuses leaves nothing running.
        """
        binary = self._binary or shutil.which("haproxy")
        if binary is None:
            raise ConfigError("a frontend needs HAProxy, which is not installed (Debian: haproxy)", where="frontend")
        self._dir.mkdir(parents=True, exist_ok=True)
        cfg = self._dir / "haproxy.cfg"
        cfg.write_text(render_config(self.spec, self.socket_path), encoding="utf-8")
        check = await asyncio.create_subprocess_exec(
            binary, "-c", "-f", str(cfg), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await check.communicate()
        if check.returncode != 0:
            raise ConfigError(
                f"HAProxy refused the configuration: {_alerts(out.decode(errors='replace'))}", where=str(cfg)
            )
        return binary, cfg

    async def start(self) -> None:
        """Write and check the configuration, start HAProxy and wait for its admin socket."""
        binary, cfg = await self.check()
        self.socket_path.unlink(missing_ok=True)
        err = (self._dir / "haproxy.log").open("ab")
        try:
            self._proc = await asyncio.create_subprocess_exec(
                binary, "-db", "-f", str(cfg), stdout=asyncio.subprocess.PIPE, stderr=err, start_new_session=True
            )
        finally:
            err.close()
        self._reader = asyncio.get_running_loop().create_task(self._read_log())
        await self._wait_ready(10.0)

    async def _wait_ready(self, timeout: float) -> None:
        deadline = self._clock.monotonic() + timeout
        while self._clock.monotonic() < deadline:
            if self._proc is not None and self._proc.returncode is not None:
                raise ActuatorError(f"HAProxy exited with {self._proc.returncode}; see {self._dir / 'haproxy.log'}")
            with contextlib.suppress(OSError):
                await self.command("show info")
                return
            await asyncio.sleep(0.02)
        raise ActuatorError(f"HAProxy's admin socket did not answer within {timeout:g}s")

    async def stop(self) -> None:
        """Stop HAProxy (SIGTERM, then SIGKILL) and the log reader."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5.0)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None

    @property
    def pid(self) -> int | None:
        """HAProxy's pid while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    # -- request log -------------------------------------------------------------------
    async def _read_log(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        stream = self._proc.stdout
        while line := await stream.readline():
            self._dispatch(line.decode(errors="replace").split())

    def _dispatch(self, fields: list[str]) -> None:
        if len(fields) != 4 or fields[0] not in self._targets:
            return
        backend, server, status, total_ms = fields
        try:
            code, seconds = int(status), max(0, int(total_ms)) / 1000.0
        except ValueError:
            return
        target = self._targets[backend]
        tally = self.served.setdefault((target, server), [0.0, 0.0, 0.0])
        tally[0] += 1
        tally[1] += code >= 500
        tally[2] += seconds
        for listener in self.listeners:
            listener(target, server, code, seconds)

    # -- runtime API -------------------------------------------------------------------
    async def command(self, line: str) -> str:
        """Send one command to the admin socket and return its answer."""
        async with self._lock:
            reader, writer = await asyncio.open_unix_connection(str(self.socket_path))
            try:
                writer.write(line.encode() + b"\n")
                await writer.drain()
                return (await reader.read()).decode(errors="replace")
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

    async def servers(self, target: str) -> dict[str, dict[str, Any]]:
        """Every server of ``target``'s backend: address, port, weight, and maint/drain flags."""
        text = await self.command(f"show servers state {backend_name(target)}")
        out: dict[str, dict[str, Any]] = {}
        for row in text.splitlines():
            cols = row.split()
            if len(cols) < 19 or cols[0].startswith("#") or cols[1] != backend_name(target):
                continue
            admin = int(cols[6])
            out[cols[3]] = {
                "addr": cols[4],
                "port": int(cols[18]),
                "weight": int(cols[7]),
                "maint": bool(admin & _MAINT_BITS),
                "drain": bool(admin & _DRAIN_BITS),
            }
        return out

    async def add_server(self, target: str, server: str, address: str, *, weight: int = 0) -> None:
        """Add a server at run time (an experiment's arm), ready with ``weight``."""
        be = backend_name(target)
        answer = await self.command(f"add server {be}/{server} {address} weight {weight}")
        if "registered" not in answer:
            raise ActuatorError(f"HAProxy did not add {be}/{server}: {answer.strip()}")
        await self.command(f"enable server {be}/{server}")

    async def remove_server(self, target: str, server: str) -> None:
        """Take a run-time server out (maintenance first, as HAProxy requires)."""
        be = backend_name(target)
        await self.command(f"disable server {be}/{server}")
        await self.command(f"shutdown sessions server {be}/{server}")
        await self.command(f"del server {be}/{server}")

    # -- the actuator contract ---------------------------------------------------------
    async def apply(self, action: Action) -> Outcome:
        """Carry out one traffic action; the server state is read back before success is reported."""
        started = self._clock.now()
        try:
            detail = await self._carry_out(action)
        except (InputError, ActuatorError, OSError) as exc:
            return Outcome(action.id, False, started, self._clock.now(), str(exc))
        return Outcome(action.id, True, started, self._clock.now(), detail)

    async def _carry_out(self, action: Action) -> str:
        if not self.fronted(action.target):
            raise InputError(f"{action.target} has no frontend", where="target")
        if action.kind in (ActionKind.REROUTE, ActionKind.PROMOTE):
            return await self._set_weights(action.target, action.params.get("weights"))
        if action.kind in _STATE_OF:
            done = [await self._set_state(action.target, action.kind, s) for s in _servers(action.params)]
            return ", ".join(done)
        raise InputError(f"{action.kind} is not a traffic action", where="action")

    async def _set_weights(self, target: str, weights: Mapping[str, Any] | None) -> str:
        if not weights or not isinstance(weights, Mapping):
            raise InputError("reroute needs 'weights': {server: weight}", where="params.weights")
        known = await self.servers(target)
        for server, weight in weights.items():
            if server not in known:
                raise InputError(f"{target} has no server {server!r}", where="params.weights")
            if not isinstance(weight, int) or not 0 <= weight <= 256:
                raise InputError(f"weight of {server} must be an integer in 0..256", where="params.weights")
        if not any(w > 0 and not known[s]["maint"] for s, w in {**_weights(known), **weights}.items()):
            raise InputError("the weights would leave no server serving", where="params.weights")
        be = backend_name(target)
        for server, weight in weights.items():
            await self.command(f"set server {be}/{server} weight {weight}")
        after = await self.servers(target)
        wrong = [s for s, w in weights.items() if after[s]["weight"] != w]
        if wrong:
            raise ActuatorError(f"weights not in force for {', '.join(wrong)}")
        return "weights " + ", ".join(f"{s}={w}" for s, w in sorted(weights.items()))

    async def _set_state(self, target: str, kind: ActionKind, server: str) -> str:
        known = await self.servers(target)
        if server not in known:
            raise InputError(f"{target} has no server {server!r}", where="params.server")
        state = _STATE_OF[kind]
        if state == "maint" and not any(not v["maint"] for s, v in known.items() if s != server):
            raise InputError(f"opening {server}'s circuit would leave {target} with no server", where="params.server")
        if state == "drain" and not any(not v["maint"] and not v["drain"] for s, v in known.items() if s != server):
            raise InputError(
                f"draining {server} would leave {target} with no server taking new requests", where="params.server"
            )
        await self.command(f"set server {backend_name(target)}/{server} state {state}")
        now = (await self.servers(target))[server]
        held = {
            "maint": now["maint"],
            "drain": now["drain"] and not now["maint"],
            "ready": not now["maint"] and not now["drain"],
        }
        if not held[state]:
            raise ActuatorError(f"{server} is not in state {state} after the command")
        return f"{server} {state}"

    async def observe(self, target: TargetId) -> TargetState:
        """Servers taking traffic (neither in maintenance nor drained, weight above zero)."""
        known = await self.servers(target)
        live = [s for s, v in known.items() if not v["maint"] and not v["drain"] and v["weight"] > 0]
        return TargetState(target, len(live), len(known), detail=", ".join(sorted(live)))


def _weights(known: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    return {s: int(v["weight"]) for s, v in known.items()}


def _servers(params: Mapping[str, Any]) -> list[str]:
    """The servers an action names: ``server``, ``replica``, or ``replicas`` (the healer's failing ones)."""
    if "server" in params:
        return [str(params["server"])]
    if "replica" in params:
        return [server_name(int(params["replica"]))]
    if params.get("replicas"):
        return [server_name(int(r)) for r in params["replicas"]]
    raise InputError("name the 'server' or the 'replica'", where="params")
