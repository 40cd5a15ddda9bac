"""The chaos monkey against real children, and its scheduler on a fake clock."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from novacron.clock import FakeClock
from novacron.demo.chaos import ChaosError, ChaosKind, ChaosMonkey, ChaosTarget, Injection, chaos_targets
from novacron.demo.fleet import demo_spec
from novacron.demo.service import _hostport, _url
from novacron.settings import HttpCheck, TargetSpec
from tests.demo.demo_helpers import Running, Services, wait_until


def _state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0]


async def _get(url: str, timeout: float = 5.0) -> httpx.Response:
    async with httpx.AsyncClient(timeout=timeout) as client:
        return await client.get(url)


def _monkey(svc: Running, name: str = "alpha", **kw: object) -> ChaosMonkey:
    target = ChaosTarget(name, svc.url, None)
    return ChaosMonkey([target], lambda _n: [svc.proc.pid], **kw)  # type: ignore[arg-type]


@pytest.mark.slow
async def test_crash_kills_a_real_child_and_is_recorded(services: Services) -> None:
    svc = services.start("alpha")
    clock = FakeClock(start=1000.0)
    seen: list[Injection] = []
    async with _monkey(svc, clock=clock, on_injection=seen.append) as monkey:
        injection = await monkey.inject("crash", "alpha")
    assert svc.proc.wait(timeout=5) == -9
    assert injection == seen[0] == monkey.injections[0]
    assert (injection.kind, injection.target, injection.pid) == (ChaosKind.CRASH, "alpha", svc.proc.pid)
    assert injection.injected_at == 1000.0
    assert injection.duration_s is None


@pytest.mark.slow
async def test_hang_stops_a_real_child_and_restore_resumes_it(services: Services) -> None:
    svc = services.start("alpha")
    monkey = _monkey(svc)
    await monkey.inject(ChaosKind.HANG, "alpha")
    # SIGSTOP takes effect when the kernel next schedules the child, a moment after the kill.
    wait_until(lambda: _state(svc.proc.pid) == "T", what="the child stopped", timeout=5.0)
    with pytest.raises(httpx.TimeoutException):
        await _get(svc.url + "/health", timeout=0.3)
    await monkey.aclose()
    wait_until(lambda: httpx.get(svc.url + "/health", timeout=2).status_code == 200, what="resume")


@pytest.mark.slow
async def test_http_faults_reach_the_service(services: Services) -> None:
    svc = services.start("alpha")
    async with _monkey(svc, seed=3) as monkey:
        errors = await monkey.inject(ChaosKind.ERRORS, "alpha")
        assert errors.duration_s is not None
        assert errors.duration_s > 0
        assert (await _get(svc.url + "/health")).status_code == 503
        slow = await monkey.inject(ChaosKind.SLOW, "alpha")
        state = (await _get(svc.url + "/chaos")).json()
        assert state["mode"] == "slow"
        assert state["delay_s"] == pytest.approx(slow.params["delay_s"], abs=1e-3)
        await monkey.creep("alpha", max_delay_s=0.1, duration_s=5)
        assert (await _get(svc.url + "/chaos")).json()["mode"] == "creep"
        await monkey.spin("alpha", duration_s=3.0)  # long enough to be seen on a loaded machine
        assert (await _get(svc.url + "/chaos")).json()["mode"] == "spin"


@pytest.mark.slow
async def test_break_start_fails_health_and_restarts_until_fixed(services: Services, tmp_path: Path) -> None:
    bad = tmp_path / "config" / "alpha.broken"
    svc = services.start("alpha", "--fail-start-file", str(bad))
    clock = FakeClock()
    monkey = ChaosMonkey([ChaosTarget("alpha", svc.url, bad)], lambda _n: [], clock=clock)
    injection = await monkey.inject("break_start", "alpha")
    assert bad.exists()
    assert (await _get(svc.url + "/health")).status_code == 503
    again, _ = services.spawn("--name", "alpha2", "--fail-start-file", str(bad))
    assert again.wait(timeout=10) == 1
    assert injection.duration_s is not None
    await clock.run_for(injection.duration_s + 0.1, step=0.1)
    assert not bad.exists()
    await monkey.aclose()


async def test_primitives_refuse_what_they_cannot_do(tmp_path: Path) -> None:
    monkey = ChaosMonkey([ChaosTarget("bare")], lambda _n: [])
    with pytest.raises(ChaosError, match="not a known"):
        await monkey.inject("crash", "ghost")
    with pytest.raises(ChaosError, match="cannot inject"):
        await monkey.inject("slow", "bare")
    with pytest.raises(ChaosError, match="no live process"):
        await monkey.inject("crash", "bare")
    with pytest.raises(ChaosError, match="no fail-start"):
        monkey.break_start("bare")
    with pytest.raises(ValueError, match="not a valid ChaosKind"):
        await monkey.inject("explode", "bare")
    with pytest.raises(ChaosError, match="refusing"):
        monkey.crash(1)
    await monkey.aclose()


@pytest.fixture
def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=10)
    return proc.pid


async def test_signalling_a_vanished_process_is_a_chaos_error(dead_pid: int) -> None:
    monkey = ChaosMonkey([ChaosTarget("gone")], lambda _n: [dead_pid])
    with pytest.raises(ChaosError, match="no such process"):
        await monkey.inject("crash", "gone")
    assert monkey.injections == []
    await monkey.aclose()


def _file_targets(tmp_path: Path, n: int) -> list[ChaosTarget]:
    return [ChaosTarget(f"t{i}", None, tmp_path / f"t{i}.broken") for i in range(n)]


async def _run_schedule(tmp_path: Path, seed: int, n: int = 4) -> list[tuple[str, str, float]]:
    clock = FakeClock(start=0.0)
    monkey = ChaosMonkey(_file_targets(tmp_path, 3), lambda _n: [], seed=seed, clock=clock, cooldown_s=5.0)
    task = asyncio.create_task(
        monkey.run(lambda: ["t0", "t1", "t2", "unknown"], clock, 2.0, ["break_start"], max_injections=n)
    )
    while not task.done():
        await clock.run_for(0.5, step=0.05)
    await task
    await monkey.aclose()
    return [(i.target, str(i.kind), i.injected_at) for i in monkey.injections]


async def test_scheduler_is_seeded_and_respects_the_cooldown(tmp_path: Path) -> None:
    first = await _run_schedule(tmp_path, seed=7)
    assert first == await _run_schedule(tmp_path, seed=7)
    assert first != await _run_schedule(tmp_path, seed=8)
    assert len(first) == 4
    times = [t for _, _, t in first]
    assert times == sorted(times)
    last: dict[str, float] = {}
    for target, kind, at in first:
        assert kind == "break_start"
        assert at - last.get(target, -1e9) >= 5.0
        last[target] = at
    assert not any(await asyncio.to_thread(lambda: list(tmp_path.glob("*.broken"))))


async def test_scheduler_waits_when_nothing_is_healthy() -> None:
    clock = FakeClock()
    monkey = ChaosMonkey([ChaosTarget("a")], lambda _n: [], clock=clock)
    task = asyncio.create_task(monkey.run(list, clock, 5.0, ["crash"], max_injections=1))
    await clock.run_for(3.0, step=0.05)
    assert not task.done()
    assert monkey.injections == []
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await monkey.aclose()


async def test_scheduler_rejects_bad_arguments() -> None:
    monkey = ChaosMonkey([ChaosTarget("a")], lambda _n: [])
    with pytest.raises(ValueError, match="rate_per_s"):
        await monkey.run(list, FakeClock(), 0.0, ["crash"])
    with pytest.raises(ValueError, match="kinds"):
        await monkey.run(list, FakeClock(), 1.0, [])
    await monkey.aclose()


def test_chaos_targets_come_from_the_spec(tmp_path: Path) -> None:
    targets = chaos_targets(demo_spec(22000, tmp_path))
    assert targets["db"].url == "http://127.0.0.1:22000"
    assert targets["db"].fail_start_file == tmp_path.resolve() / "config" / "db.broken"
    plain = TargetSpec(name="mine", command=["x"], checks=[HttpCheck(url="http://10.0.0.5:8080/healthz")])
    assert ChaosTarget.from_spec(plain) == ChaosTarget("mine", "http://10.0.0.5:8080", None)
    assert not ChaosTarget.from_spec(plain).supports(ChaosKind.BREAK_START)


@given(st.text(max_size=40) | st.sampled_from(["http://a:²", "http://a:70000", "http://[::1]:80/x/"]))
def test_url_flag_parser_accepts_or_explains(text: str) -> None:
    try:
        host, port, prefix = _url(text)
    except argparse.ArgumentTypeError as exc:
        message = str(exc)
    else:
        message = ""
        assert text.startswith("http://")
        assert host
        assert 0 <= port <= 65535
        assert prefix == "" or prefix.startswith("/")
    assert not message or repr(text) in message


@given(st.text(max_size=30) | st.sampled_from(["h:²", "h:99999", ":80", "[::1]:5"]))
def test_hostport_flag_parser_accepts_or_explains(text: str) -> None:
    try:
        host, port = _hostport(text)
    except argparse.ArgumentTypeError as exc:
        message = str(exc)
    else:
        message = ""
        assert host
        assert str(port) in text
    assert not message or "HOST:PORT" in message
