"""Canaries on real traffic: real HAProxy, real demo services, a bounded load on loopback."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from novacron.demo.fleet import free_port_block
from novacron.errors import InputError
from novacron.runtime.controller import Controller
from novacron.settings import ExperimentSpec
from tests.integration.conftest import Factory
from tests.traffic.support import fronted_fleet, load, service_command

pytestmark = pytest.mark.slow

# Large first step and effect sizes: on a loaded 2-core machine the demo services serve about
# a hundred requests a second, and each test must stay within seconds.
FAST = {
    "steps": [50, 100],
    "mde": 2.0,
    "base_rate": 0.05,
    "min_samples": 100,
    "max_samples": 3000,
    "look_interval_s": 0.1,
}


def experiment(name: str, *flags: str, **overrides: Any) -> dict[str, Any]:
    """An experiment on ``web`` whose variant is the demo service with ``flags``."""
    return {"name": name, "target": "web", "command": service_command(f"{name}-b", *flags), **FAST, **overrides}


async def drive(c: Controller, url: str, name: str, *, budget: int = 4000) -> dict[str, Any]:
    """Load the frontend until the experiment is decided (or the bounded budget is spent)."""
    assert c.experiments is not None
    done = asyncio.Event()

    async def watch() -> None:
        while name in c.experiments.live:  # type: ignore[union-attr]
            if c.experiments.live[name].state.phase.value != "running":  # type: ignore[union-attr]
                break
            await asyncio.sleep(0.05)
        done.set()

    watcher = asyncio.ensure_future(watch())
    codes = await load(url, requests=budget, concurrency=4, stop=done)
    await watcher
    await asyncio.sleep(0.3)  # the look that decided has applied its move
    out = c.experiments.describe(name)
    out["codes"] = dict(codes)
    return out


async def test_a_variant_with_five_percent_errors_is_rolled_back(controller: Factory) -> None:
    port, listen = free_port_block(3), free_port_block(1)
    # Faster than the baseline (5 ms against 10), so only its errors can count against it:
    # at the same delay a loaded machine can make the new process the slower one, and the
    # slow-share test then rolls it back first, for a reason this test is not about.
    bad = experiment("bad", "--error-ratio", "0.05", "--delay-ms", "5")
    c = await controller(fronted_fleet(port, listen, delay_ms=10, experiments=[bad]))
    assert c.traffic is not None
    out = await drive(c, f"http://127.0.0.1:{listen}/", "bad")
    assert out["phase"] == "rolled_back", out
    assert "error_ratio regressed" in out["reason"]
    servers = await c.traffic.servers("web")
    assert set(servers) == {"r0", "r1"}  # the variant's server is gone: HAProxy is as it was
    assert all(s["weight"] == 100 for s in servers.values())
    actions = [a.action for a in c.store.actions(limit=20)]
    assert any(a.requested_by == "experiment:bad" and a.params.get("split") == 0.0 for a in actions)
    looks = c.experiments.repo.looks("bad")  # type: ignore[union-attr]
    assert looks[-1]["move"] == "rollback"
    assert looks[-1]["data"]["tests"]["error_ratio"]["ci"][0] > 0


async def test_a_faster_variant_is_promoted_as_a_new_spec_version(controller: Factory) -> None:
    port, listen = free_port_block(3), free_port_block(1)
    spec = fronted_fleet(port, listen, delay_ms=10, experiments=[experiment("fast", "--delay-ms", "8")])
    c = await controller(spec)
    assert c.traffic is not None
    out = await drive(c, f"http://127.0.0.1:{listen}/", "fast")
    assert out["phase"] == "promoted", out
    servers = await c.traffic.servers("web")
    assert servers["v_b"]["weight"] == 256
    assert servers["r0"]["weight"] == 0
    latest = c.store.latest_config()
    assert latest is not None
    assert latest.source == "experiment fast"
    assert "--delay-ms" in latest.body
    assert out["codes"].get(200, 0) == sum(out["codes"].values())
    text = generate_latest(c.metrics.registry).decode()
    assert 'novacron_experiment_requests{arm="b",experiment="fast"}' in text
    assert 'novacron_experiment_split{experiment="fast"} 100.0' in text
    assert 'novacron_lb_requests_total{server="v_b",target="web"}' in text


async def test_a_controller_restart_resumes_the_experiment_from_the_store(tmp_path: Path) -> None:
    port, listen = free_port_block(3), free_port_block(1)
    spec = fronted_fleet(port, listen, experiments=[experiment("slowstep", min_samples=100000, max_samples=100000)])
    url, db = f"http://127.0.0.1:{listen}/", f"sqlite:///{tmp_path / 'n.db'}"
    first = Controller(spec, workdir=tmp_path, store_url=db, seed=1)
    await first.start()
    try:
        await load(url, requests=300)
        await asyncio.sleep(0.3)
    finally:
        await first.stop()
    second = Controller(spec, workdir=tmp_path, store_url=db, seed=1)
    await second.start()
    try:
        assert second.experiments is not None
        live = second.experiments.live["slowstep"]
        assert live.state.phase.value == "running"
        assert live.tally.arms["a"].requests + live.tally.arms["b"].requests >= 250
        before = live.tally.arms["b"].requests
        await load(url, requests=200)
        await asyncio.sleep(0.3)
        assert live.tally.arms["b"].requests > before  # the variant was started again and serves
        assert (await second.traffic.servers("web"))["v_b"]["weight"] > 0  # type: ignore[union-attr]
    finally:
        await second.stop()


async def test_a_variant_that_does_not_start_leaves_haproxy_as_it_was(controller: Factory) -> None:
    port, listen = free_port_block(3), free_port_block(1)
    c = await controller(fronted_fleet(port, listen))
    assert c.traffic is not None
    assert c.experiments is not None
    before = await c.traffic.servers("web")
    dead = ExperimentSpec.model_validate(
        {
            "name": "dead",
            "target": "web",
            "command": [sys.executable, "-c", "raise SystemExit(3)"],
            "start_timeout_s": 3,
        }
    )
    with pytest.raises(InputError, match="exited with 3"):
        await c.experiments.start(dead, who="op")
    assert await c.traffic.servers("web") == before
    assert c.experiments.all() == []
    missing = dead.model_copy(update={"name": "missing", "command": ["/nonexistent/variant"]})
    with pytest.raises(InputError, match="did not start"):
        await c.experiments.start(missing, who="op")
    assert await c.traffic.servers("web") == before


async def test_a_broken_split_halts_the_experiment_and_sends_traffic_back(controller: Factory) -> None:
    port, listen = free_port_block(3), free_port_block(1)
    spec = fronted_fleet(port, listen, experiments=[experiment("split", min_samples=100000, max_samples=100000)])
    c = await controller(spec)
    assert c.traffic is not None
    assert c.experiments is not None
    # the variant's server is drained behind the experiment's back: its arm gets no traffic
    drained = await c.traffic.command("set server be_web/v_b state drain")
    assert drained.strip() == ""
    out = await drive(c, f"http://127.0.0.1:{listen}/", "split", budget=2000)
    assert out["phase"] == "halted", out
    assert "sample-ratio mismatch" in out["reason"]
    assert set(await c.traffic.servers("web")) == {"r0", "r1"}


async def test_a_bandit_over_three_arms_moves_traffic_away_from_the_failing_one(controller: Factory) -> None:
    port, listen = free_port_block(3), free_port_block(1)
    bandit = experiment(
        "trio",
        allocation="thompson",
        arms={"c": service_command("trio-c", "--error-ratio", "0.5")},
        look_interval_s=0.2,
    )
    c = await controller(fronted_fleet(port, listen, experiments=[bandit]))
    assert c.traffic is not None
    assert c.experiments is not None
    run = c.experiments.bandits["trio"]
    assert set(await c.traffic.servers("web")) == {"r0", "r1", "v_b", "v_c"}
    await load(f"http://127.0.0.1:{listen}/", requests=600, concurrency=4)
    await asyncio.sleep(0.5)
    assert run.tally.arms["c"].errors > 0
    assert run.weights["v_c"] < run.weights["v_b"]  # the arm answering half its requests with 500 loses traffic
    shown = c.experiments.describe("trio")
    assert shown["allocation"] == "thompson"
    stopped = await c.experiments.stop("trio", who="op")
    assert stopped["phase"] == "stopped"
    assert set(await c.traffic.servers("web")) == {"r0", "r1"}
    with pytest.raises(InputError, match="not running"):
        await c.experiments.stop("trio", who="op")
