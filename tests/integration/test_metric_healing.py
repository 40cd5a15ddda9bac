"""A latency creep that never fails a probe is caught by the detectors and healed."""

from __future__ import annotations

import asyncio

import httpx

from novacron.model import ActionKind, FaultKind, IncidentStatus
from novacron.settings import MetricsSpec, MetricWatch
from novacron.testing import fleet, http_service_target

from .conftest import Factory, eventually, healthy, incidents_of

WATCH = MetricWatch(
    metric="probe_latency_s",
    detector={
        "detector": "ensemble",
        "params": {
            "min_history": 30,
            "alarm": 0.45,
            "members": [{"name": "zscore", "side": "up"}, {"name": "cusum", "k": 1.0, "side": "up"}],
        },
        "exit_threshold": 0.3,
        "min_duration": 4,
    },
)


async def test_a_latency_creep_is_detected_and_healed(controller: Factory, ports: int) -> None:
    metrics = MetricsSpec(interval_s=0.2, watch=[WATCH], process=False)
    c = await controller(fleet(http_service_target("api", ports, metrics=metrics)))
    await healthy(c)
    await asyncio.sleep(8)  # 40 steps of baseline
    async with httpx.AsyncClient() as client:
        body = {"mode": "creep", "duration_s": 20, "delay_s": 0.2}
        resp = await client.post(f"http://127.0.0.1:{ports}/chaos", json=body)
        assert resp.status_code == 200
    await eventually(lambda: bool(incidents_of(c, "api")), timeout=20, what="an anomaly")
    inc = incidents_of(c, "api")[0]
    await eventually(lambda: c.store.incident(inc.id).status is IncidentStatus.RESOLVED, what="the restart")
    assert inc.kind is FaultKind.METRIC_ANOMALY
    detected = c.store.timeline(inc.id)[0]
    assert detected.data["evidence"]["metric"] == "probe_latency_s"
    assert detected.data["evidence"]["value"] > detected.data["evidence"]["baseline"]
    assert [a.action.kind for a in c.store.actions(incident_id=inc.id)] == [ActionKind.RESTART]
