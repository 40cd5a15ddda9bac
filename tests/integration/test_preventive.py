"""Preventive healing on real processes: act on a forecast before the resource runs out."""

from __future__ import annotations

import sys
from pathlib import Path

from novacron.model import ActionKind, FaultKind, IncidentStatus
from novacron.settings import MetricsSpec, ResourceLimit
from novacron.testing import fleet, http_service_target

from .conftest import Factory, eventually, incidents_of

MB = 2**20


def _service(name: str, port: int, *extra: str, limit: ResourceLimit) -> tuple[list[str], MetricsSpec]:
    command = [sys.executable, "-m", "novacron.demo.service", "--name", name, "--port", str(port), *extra]
    metrics = MetricsSpec(interval_s=0.5, url=f"http://127.0.0.1:{port}/metrics", limits=[limit])
    return command, metrics


async def test_a_leaking_service_is_restarted_before_it_runs_out_of_memory(controller: Factory, ports: int) -> None:
    limit = ResourceLimit(metric="rss_bytes", limit=200 * MB, lead_time_s=8)
    command, metrics = _service("cache", ports, "--leak-mb-per-s", "8", "--memory-limit-mb", "200", limit=limit)
    c = await controller(fleet(http_service_target("cache", ports, command=command, metrics=metrics)))
    await eventually(lambda: bool(incidents_of(c, "cache")), timeout=40, what="a forecast")
    inc = incidents_of(c, "cache")[0]
    await eventually(lambda: c.store.incident(inc.id).status is IncidentStatus.RESOLVED, what="the preventive restart")
    assert inc.kind is FaultKind.PREDICTED
    assert inc.preventive
    assert inc.summary.startswith("preventive")
    [action] = c.store.actions(incident_id=inc.id)
    assert action.action.kind is ActionKind.RESTART
    detected = c.store.timeline(inc.id)[0]
    assert detected.data["preventive"] is True
    assert 0 < detected.data["evidence"]["eta_s"] <= 8
    assert all(i.kind is FaultKind.PREDICTED for i in incidents_of(c, "cache")), "it never ran out"


async def test_a_filling_scratch_dir_is_cleaned_before_it_is_full(
    controller: Factory, ports: int, tmp_path: Path
) -> None:
    scratch = tmp_path / "scratch"
    limit = ResourceLimit(metric="scratch_used_bytes", limit=60 * MB, action=ActionKind.CLEANUP, lead_time_s=8)
    command, metrics = _service(
        "reports",
        ports,
        *("--scratch-dir", str(scratch), "--fill-mb-per-s", "3", "--scratch-cap-mb", "60"),
        limit=limit,
    )
    target = http_service_target("reports", ports, command=command, metrics=metrics, cleanup_paths=[str(scratch)])
    c = await controller(fleet(target))
    await eventually(lambda: bool(incidents_of(c, "reports")), timeout=40, what="a forecast")
    inc = incidents_of(c, "reports")[0]
    await eventually(lambda: c.store.incident(inc.id).status is IncidentStatus.RESOLVED, what="the clean-up")
    [action] = c.store.actions(incident_id=inc.id)
    assert action.action.kind is ActionKind.CLEANUP
    assert "freed" in action.detail
    assert inc.kind is FaultKind.PREDICTED
    used = sum(f.stat().st_size for f in scratch.rglob("*") if f.is_file())
    assert used < 60 * MB
