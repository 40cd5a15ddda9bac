"""The circuit agent breaks a failed replica's circuit on a real HAProxy, through the executor."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from novacron.demo.fleet import free_port_block
from novacron.settings import FleetSpec, HttpCheck
from tests.integration.conftest import Factory
from tests.traffic.support import fronted_fleet, load

pytestmark = pytest.mark.slow


def circuit_fleet(tmp_path: Path, port: int, listen: int) -> FleetSpec:
    """``web`` with two replicas behind a frontend; replica 1 cannot start while its flag file exists."""
    base = fronted_fleet(port, listen).model_dump(mode="json")
    web = base["targets"][0]
    web["command"] += ["--fail-start-file", str(tmp_path / "broken-{replica}")]
    web["checks"] = [HttpCheck(url="http://127.0.0.1:{port}/health", interval_s=0.2, timeout_s=0.5).model_dump()]
    base["agents"] = {
        "enabled": True,
        "agents": {
            name: {"enabled": name == "circuit", **({"interval_s": 0.1} if name == "circuit" else {})}
            for name in ("circuit", "exhaustion", "capacity", "scaling", "bugfix")
        },
    }
    return FleetSpec.model_validate(base)


async def _until(pred: object, timeout: float) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await pred():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.02)
    return False


async def test_a_crashed_replica_is_taken_out_and_back_with_no_error_to_clients(
    controller: Factory, tmp_path: Path
) -> None:
    port, listen = free_port_block(3), free_port_block(1)
    c = await controller(circuit_fleet(tmp_path, port, listen))
    haproxy = c.traffic
    assert haproxy is not None
    assert await c.wait_idle(10)
    await asyncio.sleep(1.0)  # the breakers have seen healthy probes
    stop = asyncio.Event()
    traffic = asyncio.ensure_future(load(f"http://127.0.0.1:{listen}/", requests=100000, concurrency=2, stop=stop))
    (tmp_path / "broken-1").touch()
    pid = c.actuator.pid_of("web", 1)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)

    async def opened() -> bool:
        return bool((await haproxy.servers("web"))["r1"]["maint"])

    async def closed() -> bool:
        return not (await haproxy.servers("web"))["r1"]["maint"]

    assert await _until(opened, 15), "the circuit of replica 1 never opened"
    (tmp_path / "broken-1").unlink()
    assert await _until(closed, 40), "the circuit of replica 1 never closed after recovery"
    stop.set()
    codes = await traffic
    assert codes[200] > 0
    assert set(codes) == {200}, codes  # retries and the open circuit: no 5xx while r0 is up

    def done() -> set[tuple[str, str]]:
        rows = c.store.actions(limit=50)
        return {(a.action.kind.value, a.status.value) for a in rows if a.action.requested_by == "agent:circuit"}

    async def both() -> bool:
        return {("open_circuit", "verified"), ("close_circuit", "verified")} <= done()

    assert await _until(both, 5), done()
