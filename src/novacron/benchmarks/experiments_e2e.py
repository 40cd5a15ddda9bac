"""``novacron bench experiments``, the real-traffic half: canaries and circuits on a real HAProxy.

A controller runs the demo service (two replicas, 10 ms per request) behind a real HAProxy;
a bounded load generator on loopback sends requests to the frontend until the experiment
is decided. One variant answers 5 % of requests with a 500 and must be rolled back; one
answers 20 % faster and must be promoted. Then a replica is killed (and kept from starting
for a moment) while the load runs: the circuit agent must open its circuit, and close it
once the replica is back, with no 5xx reaching a client.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from novacron.demo.fleet import free_port_block
from novacron.runtime.controller import Controller
from novacron.settings import FleetSpec
from novacron.telemetry import configure_logging

__all__ = ["bounded_load", "run_e2e_bench"]

_DELAY_MS = 10.0
_PROBE_S = 0.2


async def bounded_load(
    url: str, *, requests: int, concurrency: int = 4, stop: asyncio.Event | None = None
) -> Counter[int]:
    """Up to ``requests`` GETs from ``concurrency`` workers; stops early when ``stop`` is set. Status 0 = no answer."""
    codes: Counter[int] = Counter()
    left = requests

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal left
        while left > 0 and not (stop is not None and stop.is_set()):
            left -= 1
            try:
                codes[(await client.get(url)).status_code] += 1
            except httpx.HTTPError:
                codes[0] += 1

    async with httpx.AsyncClient(timeout=5.0) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return codes


def _service(name: str, *flags: str) -> list[str]:
    return [sys.executable, "-m", "novacron.demo.service", "--name", name, "--port", "{port}", *flags]


def _fleet(work: Path, *, experiments: list[dict[str, Any]], circuit: bool = False) -> tuple[FleetSpec, int]:
    port, listen = free_port_block(3), free_port_block(1)
    command = _service("web", "--delay-ms", str(_DELAY_MS), "--fail-start-file", str(work / "broken-{replica}"))
    web = {
        "name": "web",
        "command": command,
        "replicas": 2,
        "port": port,
        "start_timeout_s": 5.0,
        "stop_timeout_s": 2.0,
        "checks": [{"type": "http", "url": "http://127.0.0.1:{port}/health", "interval_s": _PROBE_S, "timeout_s": 0.5}],
        "frontend": {"listen": f"127.0.0.1:{listen}"},
    }
    agents = {"enabled": circuit, "agents": {n: {"enabled": n == "circuit", "interval_s": 0.1} for n in _AGENTS}}
    spec = FleetSpec.model_validate(
        {
            "name": "bench-traffic",
            "controller": {"store_url": f"sqlite:///{work / 'n.db'}", "workdir": str(work)},
            "targets": [web],
            "agents": agents,
            "experiments": experiments,
        }
    )
    return spec, listen


_AGENTS = ("circuit", "exhaustion", "capacity", "scaling", "bugfix")


async def _canary(work: Path, name: str, flags: list[str], settings: dict[str, Any], budget: int) -> dict[str, Any]:
    """Run one experiment to its decision under load; what it decided, when, and what each arm served."""
    exp = {"name": name, "target": "web", "command": _service(f"{name}-b", *flags), **settings}
    spec, listen = _fleet(work, experiments=[exp])
    c = Controller(spec, workdir=work, seed=1)
    await c.start()
    try:
        runner = c.experiments
        assert runner is not None
        done = asyncio.Event()

        async def watch() -> None:
            deadline = time.monotonic() + 600.0
            while time.monotonic() < deadline:
                if name not in runner.live or runner.live[name].state.phase.value != "running":
                    break
                await asyncio.sleep(0.02)
            done.set()

        watcher = asyncio.ensure_future(watch())
        started = time.monotonic()
        codes = await bounded_load(f"http://127.0.0.1:{listen}/", requests=budget, stop=done)
        wall = time.monotonic() - started
        await watcher
        out = runner.describe(name)
    finally:
        await c.stop()
    applied, decided = out.get("applied_at"), out.get("decided_at")
    return {
        "phase": out["phase"],
        "reason": out["reason"],
        "decision_s": out["decision_s"],
        "apply_s": None if applied is None or decided is None else round(applied - decided, 3),
        "arm_requests": {a: w["requests"] for a, w in out["arms"].items()},
        "arm_errors": {a: w["errors"] for a, w in out["arms"].items()},
        "client_requests": sum(codes.values()),
        "requests_per_s": round(sum(codes.values()) / wall, 1) if wall > 0 else None,
    }


async def _circuit(work: Path) -> dict[str, Any]:
    """Kill a replica under load; time the circuit's opening and closing; count 5xx seen by clients."""
    spec, listen = _fleet(work, experiments=[], circuit=True)
    c = Controller(spec, workdir=work, seed=1)
    await c.start()
    try:
        haproxy = c.traffic
        assert haproxy is not None
        await c.wait_idle(10)
        await asyncio.sleep(1.0)
        stop = asyncio.Event()
        load = asyncio.ensure_future(
            bounded_load(f"http://127.0.0.1:{listen}/", requests=50_000, concurrency=2, stop=stop)
        )
        (work / "broken-1").touch()
        pid = c.actuator.pid_of("web", 1)
        assert pid is not None
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        opened = await _wait(lambda s: s["r1"]["maint"], haproxy, 30)
        open_s = None if opened is None else opened - killed
        (work / "broken-1").unlink()
        freed = time.monotonic()
        closed = await _wait(lambda s: not s["r1"]["maint"], haproxy, 60)
        stop.set()
        codes = await load
    finally:
        await c.stop()
    return {
        "probe_interval_s": _PROBE_S,
        "open_s": None if open_s is None else round(open_s, 3),
        "open_within_two_probes": open_s is not None and open_s <= 2 * _PROBE_S,
        "reclose_s": None if closed is None else round(closed - freed, 3),
        "client_requests": sum(codes.values()),
        "client_5xx": sum(n for code, n in codes.items() if code >= 500 or code == 0),
    }


async def _circuits(work: Path, *, rounds: int) -> dict[str, Any]:
    """``rounds`` crashed replicas, each on a fresh controller; every opening time and the median."""
    runs = []
    for i in range(rounds):
        (work / str(i)).mkdir(parents=True)
        runs.append(await _circuit(work / str(i)))
    opens = sorted(r["open_s"] for r in runs if r["open_s"] is not None)
    return {
        "probe_interval_s": _PROBE_S,
        "rounds": rounds,
        "open_s": [r["open_s"] for r in runs],
        "open_s_median": opens[len(opens) // 2] if opens else None,
        "opened_within_two_probes": sum(bool(r["open_within_two_probes"]) for r in runs),
        "reclosed": sum(r["reclose_s"] is not None for r in runs),
        "reclose_s": [r["reclose_s"] for r in runs],
        "client_requests": sum(r["client_requests"] for r in runs),
        "client_5xx": sum(r["client_5xx"] for r in runs),
    }


async def _wait(pred: Any, haproxy: Any, timeout: float) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred(await haproxy.servers("web")):
            return time.monotonic()
        await asyncio.sleep(0.01)
    return None


def run_e2e_bench(*, budget: int = 20_000) -> dict[str, Any]:
    """The e2e and circuit figures (each experiment stops at its decision or after ``budget`` requests)."""
    settings = {"steps": [20, 50, 100], "mde": 1.0, "base_rate": 0.05, "min_samples": 200, "look_interval_s": 0.2}

    configure_logging(level=logging.WARNING)  # the controllers' log goes to stderr: stdout is the one JSON object

    async def main() -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="novacron-bench-traffic-") as tmp:
            root = Path(tmp)
            for sub in ("bad", "good"):
                (root / sub).mkdir()
            bad = await _canary(
                root / "bad", "bad", ["--error-ratio", "0.05", "--delay-ms", str(_DELAY_MS)], settings, budget
            )
            good = await _canary(root / "good", "good", ["--delay-ms", str(_DELAY_MS * 0.8)], settings, budget)
            circuit = await _circuits(root / "circuit", rounds=3)
        return {
            "e2e": {
                "bad_rolled_back": bad["phase"] == "rolled_back",
                "good_promoted": good["phase"] == "promoted",
                "decision_s": {"bad": bad["decision_s"], "good": good["decision_s"]},
                "rollback_s": bad["apply_s"],
                "bad_arm_requests": bad["arm_requests"].get("b"),
                "bad": bad,
                "good": good,
                "settings": settings,
            },
            "circuit": circuit,
        }

    return asyncio.run(main())
