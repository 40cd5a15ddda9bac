"""Store faults: writes that fail wait in order and land when the store takes them again."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from prometheus_client import CollectorRegistry

from novacron.api.status_view import store_condition
from novacron.model import ActionStatus, IncidentStatus
from novacron.runtime.controller import Controller
from novacron.store import Store
from novacron.store.guard import GuardedStore, StoreCondition
from novacron.telemetry import Metrics
from novacron.testing import fleet, http_service_target

from ..integration.conftest import eventually, healthy, kill
from ..store.full import cap_pages


def _full(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())


def test_writes_on_a_full_store_wait_in_order_and_land_on_recovery(tmp_path: Path) -> None:
    store = GuardedStore.open(f"sqlite:///{tmp_path / 'g.db'}")
    seen: list[StoreCondition] = []
    store.on_change = seen.append
    try:
        assert store.flush(5.0)
        cap_pages(store, _full(store))
        for i in range(50):
            store.audit(now=float(i), actor="t", verb="v", subject=f"s{i}", result="ok", blob="x" * 2000)
        time.sleep(0.3)
        c = store.condition
        assert c.degraded
        assert 0 < c.pending <= 50
        assert c.failures >= 1
        assert "full" in (c.last_error or "")
        assert seen
        assert seen[0].degraded
        cap_pages(store, None)
        assert store.flush(10.0)
        assert not store.condition.degraded
        assert [e.subject for e in reversed(store.audit_log(limit=100))] == [f"s{i}" for i in range(50)]
    finally:
        store.close()


def test_a_claim_made_while_the_store_is_down_stays_claimed(tmp_path: Path) -> None:
    from novacron.healing.catalog import new_action
    from novacron.model import ActionKind, TargetId

    store = GuardedStore.open(f"sqlite:///{tmp_path / 'g.db'}")
    try:
        cap_pages(store, _full(store))
        action = new_action(ActionKind.RESTART, TargetId("api"), key="k1")
        assert store.claim_action(action, ActionStatus.PLANNED, now=1.0) is None
        again = store.claim_action(action, ActionStatus.PLANNED, now=2.0)
        assert again is not None
        assert again.action.id == action.id
        store.set_action_status(action.id, ActionStatus.VERIFIED, finished_at=3.0, detail="done")
        held = store.action_by_key("k1")
        assert held is not None
        assert held.status is ActionStatus.VERIFIED
        cap_pages(store, None)
        assert store.flush(10.0)
    finally:
        store.close()
    plain = Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    try:
        rec = plain.action_by_key("k1")
        assert rec is not None
        assert rec.status is ActionStatus.VERIFIED
    finally:
        plain.close()


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs for the store (root only; skipped elsewhere)."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True, check=False
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(fs: Path) -> Path:
    filler = fs / "filler"
    # Unbuffered, and the error suppressed around the close too: a buffered tail would
    # raise "no space left" again when the file is closed.
    with contextlib.suppress(OSError), filler.open("wb", buffering=0) as out:
        while True:
            out.write(b"\0" * 65536)
    return filler


def _gauge(metrics: Metrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    return -1.0 if value is None else value


async def test_a_controller_on_a_full_filesystem_heals_and_loses_nothing(
    tmp_path: Path, small_fs: Path, ports: int
) -> None:
    metrics = Metrics(CollectorRegistry())
    c = Controller(
        fleet(http_service_target("api", ports)),
        workdir=tmp_path,
        store_url=f"sqlite:///{small_fs / 'n.db'}",
        metrics=metrics,
        seed=1,
    )
    await c.start()
    guarded = c.store
    assert isinstance(guarded, GuardedStore)
    try:
        await healthy(c)
        filler = _fill(small_fs)
        old = kill(c, "api")
        await eventually(lambda: guarded.condition.degraded, what="the store degraded")
        await eventually(lambda: bool(c.actuator.pids("api")) and c.actuator.pids("api")[0] != old, what="restart")
        await healthy(c)
        await eventually(lambda: c.incidents.open_for("api") is None, what="incident resolved in memory")
        assert _gauge(metrics, "novacron_store_degraded") == 1.0
        assert _gauge(metrics, "novacron_store_pending_writes") > 0
        cond = store_condition(c.store)
        assert cond is not None
        assert cond.degraded
        filler.unlink()
        await eventually(lambda: not guarded.condition.degraded, timeout=15, what="the store recovered")
        assert _gauge(metrics, "novacron_store_degraded") == 0.0
        incidents = c.store.incidents()
        assert [i.status for i in incidents] == [IncidentStatus.RESOLVED]
        actions = c.store.actions(incident_id=incidents[0].id)
        assert [a.status for a in actions] == [ActionStatus.VERIFIED]
        assert {"detected", "action_started", "verified", "resolved"} <= {
            e.kind for e in c.store.timeline(incidents[0].id)
        }
    finally:
        await c.stop()


def test_novacron_run_on_a_full_filesystem_says_so_in_status_and_log(tmp_path: Path, small_fs: Path) -> None:
    from ..cli.runner import cli_json, controller, service, wait_for, write_spec

    spec = write_spec(tmp_path, service("api"))
    store_url = f"sqlite:///{small_fs / 'n.db'}"
    with controller(spec, "--store", store_url) as run:
        wait_for(lambda: cli_json("status", "--store", store_url)["targets"], "a status line")
        filler = _fill(small_fs)
        child = wait_for(lambda: psutil.Process(run.proc.pid).children(), "the service")
        child[0].kill()
        report = wait_for(
            lambda: (
                (r := cli_json("status", "--store", store_url))["controller"]["store"]
                and r["controller"]["store"]["degraded"]
                and r
            ),
            "status showing the store degraded",
        )
        assert report["controller"]["store"]["pending_writes"] > 0
        assert "full" in report["controller"]["store"]["last_error"]
        errors = [line for line in run.lines() if line.get("level") == "error"]
        assert any("store write failed" in line["event"] for line in errors)
        filler.unlink()
        wait_for(lambda: not cli_json("status", "--store", store_url)["controller"]["store"]["degraded"], "recovery")
    assert not any("Traceback" in line for line in run.log.read_text().splitlines())
