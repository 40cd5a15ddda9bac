"""The demo service as a real subprocess: health, metrics, chaos modes, start and stop."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from novacron.demo.service import parse_args
from tests.demo.demo_helpers import Running, Services, wait_until

pytestmark = pytest.mark.slow


def metric(svc: Running, name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels``."""
    text = svc.get("/metrics").text
    total, seen = 0.0, False
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
                seen = True
    assert seen, f"no sample {name}{labels} in /metrics"
    return total


@pytest.fixture(scope="module")
def shared() -> Iterator[Running]:
    """One service for tests that leave no state behind."""
    services = Services()
    try:
        yield services.start("shared")
    finally:
        services.close()


def chaos(svc: Running, **body: object) -> httpx.Response:
    return httpx.post(svc.url + "/chaos", json=body, timeout=5)


def test_health_root_and_metrics(services: Services) -> None:
    svc = services.start("alpha")
    health = svc.get("/health")
    assert (health.status_code, health.text.strip()) == (200, "ok")
    assert svc.get("/").json()["service"] == "alpha"
    assert svc.get("/nope").status_code == 404
    assert httpx.delete(svc.url + "/health").status_code == 405

    families = {f.name: f for f in text_string_to_metric_families(svc.get("/metrics").text)}
    assert {"http_requests", "http_errors", "http_request_duration_seconds"} <= families.keys()
    assert families["http_request_duration_seconds"].type == "histogram"
    assert metric(svc, "http_requests_total", path="/health", code="200") >= 1
    assert metric(svc, "http_requests_total", path="other", code="404") == 1
    assert metric(svc, "process_resident_memory_bytes") > 1_000_000
    assert metric(svc, "http_request_duration_seconds_count") >= 3


def test_keep_alive_serves_many_requests_on_one_connection(services: Services) -> None:
    svc = services.start("alpha")
    with httpx.Client(base_url=svc.url, timeout=5) as client:
        codes = [client.get("/health").status_code for _ in range(20)]
    assert codes == [200] * 20
    assert metric(svc, "http_requests_total", path="/health") >= 20


def test_error_mode_fails_health_then_ends_by_itself(services: Services) -> None:
    svc = services.start("alpha")
    assert chaos(svc, mode="error", duration_s=0.6).json()["mode"] == "error"
    assert svc.get("/health").status_code == 503
    assert svc.get("/").status_code == 500
    assert metric(svc, "http_errors_total") >= 2
    wait_until(lambda: svc.get("/health").status_code == 200, what="error mode to expire")


def test_slow_mode_delays_answers(services: Services) -> None:
    svc = services.start("alpha")
    chaos(svc, mode="slow", duration_s=5, delay_s=0.4)
    t0 = time.monotonic()
    assert svc.get("/health").status_code == 200
    assert time.monotonic() - t0 >= 0.4
    with pytest.raises(httpx.TimeoutException):
        httpx.get(svc.url + "/health", timeout=0.1)
    chaos(svc, mode="normal")
    assert svc.get("/chaos").json()["mode"] == "normal"


def test_creep_latency_grows_over_its_duration(services: Services) -> None:
    svc = services.start("alpha")
    chaos(svc, mode="creep", duration_s=2.0, delay_s=0.5)
    first = svc.get("/chaos").json()["delay_s"]
    time.sleep(0.6)
    later = svc.get("/chaos").json()["delay_s"]
    assert 0 <= first < later <= 0.5
    assert svc.get("/health").status_code == 200


def test_spin_burns_cpu_while_still_answering(services: Services) -> None:
    svc = services.start("alpha")
    before = metric(svc, "process_cpu_seconds_total")
    chaos(svc, mode="spin", duration_s=3.0)
    time.sleep(0.5)
    assert svc.get("/health").status_code == 200
    wait_until(lambda: svc.get("/chaos").json()["mode"] == "normal", what="spin to end")
    # An idle service uses a few hundredths of a second in 3 s; a spinning one far more, even
    # when a busy machine gives it a small share of a core.
    assert metric(svc, "process_cpu_seconds_total") - before > 0.1


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"mode": "explode"}', b'{"mode": "slow", "duration_s": -1}'],
)
def test_bad_chaos_request_is_rejected(shared: Running, body: bytes) -> None:
    svc = shared
    resp = httpx.post(svc.url + "/chaos", content=body, timeout=5)
    assert resp.status_code == 400
    assert "error" in resp.json()
    assert svc.get("/chaos").json()["mode"] == "normal"


def test_upstreams_are_called_from_root(services: Services) -> None:
    db = services.start("db")
    api = services.start("api", "--upstream", db.url)
    assert api.get("/").json()["upstreams"] == {f"127.0.0.1:{db.port}": 200}
    chaos(db, mode="error", duration_s=30)
    assert api.get("/").status_code == 502
    assert metric(api, "upstream_errors_total") == 1


def test_fail_start_file_stops_the_start_and_fails_health(services: Services, tmp_path: Path) -> None:
    bad = tmp_path / "svc.broken"
    svc = services.start("alpha", "--fail-start-file", str(bad))
    bad.write_text("x")
    assert svc.get("/health").status_code == 503
    proc, _ = services.spawn("--name", "beta", "--fail-start-file", str(bad))
    assert proc.wait(timeout=10) == 1
    assert proc.stderr is not None
    assert b"bad config" in proc.stderr.read()
    bad.unlink()
    assert svc.get("/health").status_code == 200


def test_sigterm_stops_gracefully(services: Services) -> None:
    svc = services.start("alpha")
    svc.proc.send_signal(signal.SIGTERM)
    assert svc.proc.wait(timeout=5) == 0


def test_busy_port_is_reported_and_exit_1(services: Services) -> None:
    holder = services.start("alpha")
    proc, _ = services.spawn("--name", "beta", "--bind-retry-s", "0.1", port=holder.port)
    assert proc.wait(timeout=10) == 1


@pytest.mark.parametrize(
    "args",
    [
        ["--name", "x"],
        ["--name", "x", "--port", "70000"],
        ["--name", "x", "--port", "-1"],
        ["--name", "x", "--port", "1", "--upstream", "ftp://a:1"],
        ["--name", "x", "--port", "1", "--upstream", "http://nohost"],
        ["--name", "x", "--port", "1", "--leak-mb-per-s", "-2"],
        ["--name", "x", "--port", "1", "--fill-mb-per-s", "1"],
        ["--name", "x", "--port", "1", "--heartbeat-udp", "nowhere"],
    ],
)
def test_bad_flags_are_usage_errors(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_args(args)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_bad_flags_exit_2() -> None:
    cmd = [sys.executable, "-m", "novacron.demo.service", "--name", "x", "--port", "nope"]
    done = subprocess.run(cmd, capture_output=True, timeout=30, check=False)
    assert done.returncode == 2
    assert b"--port" in done.stderr


def test_leak_grows_resident_memory_until_the_limit_kills_it(services: Services) -> None:
    svc = services.start("leaky", "--leak-mb-per-s", "40", "--memory-limit-mb", "80")
    # The leak starts with the process, so measure growth against what had leaked already;
    # RSS first, so whatever leaks between the two readings counts on the RSS side too.
    start = metric(svc, "process_resident_memory_bytes")
    leaked_at_start = metric(svc, "demo_leaked_bytes")
    wait_until(
        lambda: svc.proc.poll() is not None or metric(svc, "demo_leaked_bytes") > leaked_at_start + 20e6,
        what="the leak to grow",
    )
    assert metric(svc, "process_resident_memory_bytes") - start > 15e6
    assert svc.proc.wait(timeout=10) == -signal.SIGKILL


def test_sawtooth_memory_rises_and_falls(services: Services) -> None:
    svc = services.start("saw", "--sawtooth-mb", "24", "--sawtooth-period-s", "1.2")
    readings: list[float] = []

    def fell_after_rising() -> bool:
        readings.append(metric(svc, "process_resident_memory_bytes"))
        peak = max(readings)
        return peak - readings[0] > 8e6 and peak - readings[-1] > 8e6

    wait_until(fell_after_rising, what="a rise and a fall of RSS", step=0.05)


def test_fill_grows_scratch_until_full_and_recovers_after_cleanup(services: Services, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    svc = services.start("filler", "--scratch-dir", str(scratch), "--fill-mb-per-s", "10", "--scratch-cap-mb", "2")
    wait_until(lambda: svc.get("/health").status_code == 503, what="scratch to fill")
    used = sum(f.stat().st_size for f in scratch.iterdir())
    assert 1_000_000 < used <= 2 * 1024 * 1024
    assert metric(svc, "scratch_used_bytes") == used
    assert metric(svc, "scratch_limit_bytes") == 2 * 1024 * 1024
    for f in scratch.iterdir():
        f.unlink()
    wait_until(lambda: svc.get("/health").status_code == 200, what="recovery after clean-up")


def test_heartbeats_arrive_over_udp(services: Services) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        port = sock.getsockname()[1]
        services.start("beat", "--heartbeat-udp", f"127.0.0.1:{port}", "--heartbeat-interval-s", "0.05")
        got = [sock.recvfrom(64)[0] for _ in range(5)]
    assert got == [b"beat"] * 5


def test_service_module_imports_nothing_heavy() -> None:
    code = "import sys, novacron.demo.service; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    heavy = {"asyncio", "pydantic", "httpx", "typing", "dataclasses", "pathlib", "http.server", "ssl"}
    assert not heavy & loaded, "these slow down every restart"


def test_chaos_get_describes_state(services: Services) -> None:
    svc = services.start("alpha")
    chaos(svc, mode="slow", duration_s=10, delay_s=0.01)
    state = json.loads(svc.get("/chaos").text)
    assert state["mode"] == "slow"
    assert 0 < state["remaining_s"] <= 10
