"""Start-up after a controller died at any instant: adopt by nonce, kill strays, file what died."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from novacron.actuators.process import ENV_FLEET, ENV_NONCE
from novacron.model import ActionKind, FaultKind, IncidentStatus
from novacron.runtime.adoption import fleet_id
from novacron.settings import FleetSpec
from novacron.store import ProcessRecord, Store
from novacron.testing import fleet, http_service_target

from .conftest import Factory, eventually, healthy, incidents_of, resolved


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """The store the controllers under test will open (seeded as a dead controller left it)."""
    db = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    yield db
    db.close()


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a "previous controller" started; killed and reaped at the end."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def _spec(port: int) -> FleetSpec:
    return fleet(http_service_target("api", port), backoff={"base_s": 0.05, "cap_s": 1.0})


def _spawn_like_a_controller(
    spec: FleetSpec, store: Store, procs: list[subprocess.Popen[bytes]], *, nonce: str
) -> subprocess.Popen[bytes]:
    env = {**os.environ, ENV_FLEET: fleet_id(store, now=0.0), ENV_NONCE: nonce}
    proc = subprocess.Popen(
        spec.targets[0].command, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    procs.append(proc)
    return proc


def _journaled_child(spec: FleetSpec, store: Store, procs: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    """A replica as a dead controller left it: spawned and journaled with its pid."""
    nonce = uuid.uuid4().hex
    proc = _spawn_like_a_controller(spec, store, procs, nonce=nonce)
    created = psutil.Process(proc.pid).create_time()
    store.set_process(ProcessRecord("api", 0, proc.pid, created, spec.targets[0].port, nonce))
    return proc


def _listeners(port: int) -> set[int]:
    conns = psutil.net_connections(kind="tcp")
    return {c.pid for c in conns if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid}


async def test_a_child_whose_pid_never_reached_the_store_is_adopted_by_its_nonce(
    controller: Factory, ports: int, store: Store, children: list[subprocess.Popen[bytes]]
) -> None:
    spec = _spec(ports)
    nonce = uuid.uuid4().hex
    store.set_process(ProcessRecord("api", 0, 0, 0.0, ports, nonce))  # the intent, committed before the spawn
    orphan = _spawn_like_a_controller(spec, store, children, nonce=nonce)  # ... then the controller died
    c = await controller(spec)
    await healthy(c)
    assert c.actuator.pids("api") == (orphan.pid,)
    assert _listeners(ports) == {orphan.pid}, "never a second process on the port"
    [row] = store.processes()
    assert (row.pid, row.nonce) == (orphan.pid, nonce)
    assert incidents_of(c, "api") == []


async def test_a_replica_found_dead_at_start_is_a_fault_healed_through_the_executor(
    controller: Factory, ports: int, store: Store, children: list[subprocess.Popen[bytes]]
) -> None:
    spec = _spec(ports)
    dead = _journaled_child(spec, store, children)
    dead.kill()  # it crashed while no controller watched
    dead.wait()
    c = await controller(spec)
    await eventually(resolved(c, "api"), what="the crash found at start to be healed")
    [inc] = incidents_of(c, "api")
    assert inc.kind is FaultKind.CRASH
    [fault] = store.faults(inc.id)
    assert fault["evidence"]["found_at_start"] is True
    actions = store.actions(incident_id=inc.id)
    assert [a.action.kind for a in actions] == [ActionKind.RESTART]
    assert any(e.verb == "action.restart" for e in store.audit_log())
    assert len(c.actuator.pids("api")) == 1


async def test_a_stray_of_this_fleet_is_killed_and_the_journaled_one_kept(
    controller: Factory, ports: int, store: Store, children: list[subprocess.Popen[bytes]]
) -> None:
    spec = _spec(ports)
    kept = _journaled_child(spec, store, children)
    stray = _spawn_like_a_controller(spec, store, children, nonce=uuid.uuid4().hex)  # nothing journals it
    c = await controller(spec)
    await healthy(c)
    await eventually(lambda: stray.poll() is not None, what="the stray to be killed")
    assert c.actuator.pids("api") == (kept.pid,)


async def test_a_port_held_by_a_foreign_process_is_refused_not_shared(controller: Factory, ports: int) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ports))
        squatter.listen()
        c = await controller(_spec(ports))
        await eventually(lambda: bool(incidents_of(c, "api")), what="a start failure")
        inc = incidents_of(c, "api")[0]
        assert inc.kind is FaultKind.START_FAILED
        assert f"port {ports} is already in use by pid {os.getpid()}" in inc.summary
        assert c.actuator.pids("api") == ()


async def test_a_graceful_stop_forgets_the_replicas_so_the_next_start_is_clean(
    controller: Factory, ports: int, store: Store
) -> None:
    spec = _spec(ports)
    first = await controller(spec)
    await healthy(first)
    await first.stop()
    assert store.processes() == []
    second = await controller(spec)
    await healthy(second)
    assert incidents_of(second, "api") == []
    assert all(i.status is IncidentStatus.RESOLVED for i in store.incidents())
