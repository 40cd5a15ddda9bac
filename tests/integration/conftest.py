"""Real controllers over real processes; everything started is stopped afterwards."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import psutil
import pytest

from novacron.demo.fleet import free_port_block
from novacron.model import Incident, IncidentStatus
from novacron.runtime.controller import Controller
from novacron.settings import FleetSpec

Factory = Callable[[FleetSpec], Coroutine[Any, Any, Controller]]


@pytest.fixture
def ports() -> int:
    """The first of a block of 10 free loopback ports."""
    return free_port_block(10)


@pytest.fixture
async def controller(tmp_path: Path) -> AsyncIterator[Factory]:
    """Start controllers on a temporary store; stop them (and their processes) at the end."""
    started: list[Controller] = []

    async def make(spec: FleetSpec) -> Controller:
        c = Controller(spec, workdir=tmp_path, store_url=f"sqlite:///{tmp_path / 'n.db'}", seed=1)
        await c.start()
        started.append(c)
        return c

    yield make
    for c in started:
        stopping = asyncio.ensure_future(c.stop())
        done, _ = await asyncio.wait([stopping], timeout=15)
        if not done:
            stacks = []
            for task in asyncio.all_tasks():
                stacks.append(f"{task.get_name()}: {task.get_stack(limit=5)}")
            pytest.fail("controller did not stop within 15 s:\n" + "\n".join(stacks))
    leftovers = [p for p in psutil.Process().children(recursive=True) if p.is_running()]
    for p in leftovers:
        p.kill()


async def eventually(pred: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Wait until ``pred()`` holds, or fail naming ``what``."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        if loop.time() > end:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def healthy(c: Controller, *targets: str) -> None:
    """Wait until the targets are healthy."""
    names = targets or tuple(t.name for t in c.spec.targets)
    await eventually(lambda: all(c.health.is_healthy(t) for t in names), what=f"{names} healthy")


def kill(c: Controller, target: str, sig: signal.Signals = signal.SIGKILL) -> int:
    """Send ``sig`` to the target's first replica; returns the pid."""
    pid = c.actuator.pids(target)[0]
    os.kill(pid, sig)
    return pid


def incidents_of(c: Controller, target: str) -> list[Incident]:
    """The target's incidents, oldest first."""
    return [i for i in reversed(c.store.incidents(limit=1000)) if i.target == target]


def resolved(c: Controller, target: str, n: int = 1) -> Callable[[], bool]:
    """A predicate: ``n`` incidents of the target are resolved."""
    return lambda: sum(i.status is IncidentStatus.RESOLVED for i in incidents_of(c, target)) >= n
