"""``novacron bench agents``: the agents' figures on simulated streams, the twin and the demo fleet.

* exhaustion — share of leaks acted on before the limit, false actions per 1,000
  target-hours (synthetic series with known truth), and on the demo fleet a real leaking
  service: restarts by the agent versus out-of-memory exits;
* circuit — probe intervals from an outage to an open circuit (simulated streams, and a
  real demo service frozen with SIGSTOP under a running controller);
* scaling — flaps of a threshold autoscaler on the twin's workload before and after the
  adjuster's proposal.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from novacron.benchmarks.agents_sim import circuit_streams, exhaustion_synthetic, scaling_flaps
from novacron.demo.fleet import free_port_block
from novacron.model import FaultKind
from novacron.runtime.controller import Controller
from novacron.settings import FleetSpec, HttpCheck, TargetSpec
from novacron.telemetry import configure_logging
from novacron.testing import fleet

__all__ = ["run_agents_bench"]

_MB = 1024 * 1024


def _spec(tmp: Path, port: int) -> FleetSpec:
    def service(name: str, p: int, *extra: str) -> TargetSpec:
        cmd = [sys.executable, "-m", "novacron.demo.service", "--name", name, "--port", str(p), *extra]
        check = HttpCheck(url=f"http://127.0.0.1:{p}/health", interval_s=0.2, timeout_s=0.3, failures=2)
        return TargetSpec(name=name, command=cmd, port=p, start_timeout_s=5, stop_timeout_s=2, checks=[check])

    leaky = service("leaky", port, "--leak-mb-per-s", "25", "--memory-limit-mb", "400")
    base = fleet(
        leaky, service("api", port + 1), store_url=f"sqlite:///{tmp / 'n.db'}", max_actions_per_target_per_hour=1000
    )
    agents = {
        "enabled": True,
        "agents": {
            "exhaustion": {"interval_s": 0.5, "options": {"lead_time_s": 6, "limits": {"memory": 400 * _MB}}},
            "circuit": {"interval_s": 0.1},
            "capacity": {"enabled": False},
            "scaling": {"enabled": False},
            "bugfix": {"enabled": False},
        },
    }
    return FleetSpec.model_validate({**base.model_dump(), "agents": agents})


async def _demo(seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="novacron-bench-agents-") as tmp:
        c = Controller(_spec(Path(tmp), free_port_block(4)), workdir=Path(tmp), seed=1)
        await c.start()
        try:
            await asyncio.sleep(seconds)
            restarts = [r for r in c.store.actions(limit=10_000) if r.action.requested_by == "agent:exhaustion"]
            crashes = [i for i in c.store.incidents(limit=10_000) if i.target == "leaky" and i.kind is FaultKind.CRASH]
            stopped_at = c.clock.now()
            os.kill(c.actuator.pids("api")[0], signal.SIGSTOP)
            opened = await _wait_open(c, stopped_at)
        finally:
            await asyncio.wait_for(c.stop(), timeout=20)
    total = len(restarts) + len(crashes)
    return {
        "leaky_service_seconds": seconds,
        "agent_restarts": len(restarts),
        "oom_exits": len(crashes),
        "acted_before_limit_share": round(len(restarts) / total, 3) if total else None,
        "circuit_freeze_to_open_recorded_s": None if opened is None else round(opened[0], 3),
        "circuit_first_failed_probe_to_open_intervals": None if opened is None else round(opened[1] / 0.2, 2),
        "probe_interval_s": 0.2,
        "probe_timeout_s": 0.3,
    }


async def _wait_open(c: Controller, since: float) -> tuple[float, float] | None:
    for _ in range(200):
        for row in c.store.agent_outputs(agent="circuit", limit=5):
            for f in row["findings"]:
                if row["run_at"] >= since and f["kind"] == "circuit_failed" and f["target"] == "api":
                    ev = f["evidence"]
                    return float(row["run_at"]) - since, float(ev["opened_at"]) - float(ev["first_failure_at"])
        await asyncio.sleep(0.05)
    return None


def run_agents_bench(*, leaks_per_kind: int = 15, demo_seconds: float = 45.0, with_demo: bool = True) -> dict[str, Any]:
    """All figures as one JSON-ready object."""
    configure_logging(level=logging.WARNING)
    result: dict[str, Any] = {
        "exhaustion": exhaustion_synthetic(per_kind=leaks_per_kind),
        "circuit": circuit_streams(),
        "scaling": scaling_flaps(),
    }
    if with_demo:
        result["demo_fleet"] = asyncio.run(_demo(demo_seconds))
    ex, ci, sc = result["exhaustion"], result["circuit"], result["scaling"]
    result["targets"] = {
        "exhaustion_before_limit_ge_95pct": ex["acted_before_limit_share"] >= 0.95,
        "false_actions_le_1_per_1000h": ex["false_actions_per_1000_target_hours"] <= 1.0,
        "circuit_opens_within_2_intervals": ci["opened_within_two_intervals_share"] >= 1.0,
        "scaling_flaps_reduced_ge_50pct": (sc["flap_reduction"] or 0.0) >= 0.5,
    }
    return result
