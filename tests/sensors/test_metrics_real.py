"""Metric scraping from a real service's /metrics and its process readings."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import psutil
import pytest

from novacron.clock import MonotonicClock
from novacron.demo.fleet import free_port_block
from novacron.model import Observation, TargetId
from novacron.sensors.metrics import MetricsScraper, derive_rates, parse_prometheus_text, process_readings

TEXT = """# TYPE http_requests_total counter
http_requests_total{path="/",code="200"} 90
http_requests_total{path="/health",code="200"} 10
# TYPE http_errors_total counter
http_errors_total{path="/"} 5
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.1"} 100
http_request_duration_seconds_bucket{le="+Inf"} 100
http_request_duration_seconds_sum 2.0
http_request_duration_seconds_count 100
"""


def test_prometheus_text_is_summed_over_labels() -> None:
    parsed = parse_prometheus_text(TEXT)
    assert parsed["http_requests_total"] == 100
    assert parsed["http_request_duration_seconds_count"] == 100
    assert not any(k.endswith("_bucket") for k in parsed)


def test_rates_come_from_counter_deltas() -> None:
    before = parse_prometheus_text(TEXT)
    now = dict(before, http_requests_total=200, http_errors_total=15)
    now["http_request_duration_seconds_sum"] = 12.0
    now["http_request_duration_seconds_count"] = 200
    rates = derive_rates(now, before)
    assert rates["error_ratio"] == pytest.approx(0.1)
    assert rates["http_request_duration_seconds_mean_s"] == pytest.approx(0.1)


def test_malformed_text_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_prometheus_text("this is { not prometheus")


async def test_scraping_a_real_service() -> None:
    port = free_port_block(1)
    proc = subprocess.Popen(  # noqa: ASYNC220 - a child to scrape, started once
        [sys.executable, "-m", "novacron.demo.service", "--name", "m", "--port", str(port)]
    )
    seen: list[Observation] = []
    scraper = MetricsScraper(MonotonicClock(), seen.append)
    try:
        scraper.add(
            TargetId("m"),
            0,
            url=f"http://127.0.0.1:{port}/metrics",
            pid_of=lambda: proc.pid,
            process=True,
            interval_s=0.2,
        )
        for _ in range(50):
            await asyncio.sleep(0.1)
            if len(seen) >= 3 and "process_resident_memory_bytes" in seen[-1].metrics:
                break
    finally:
        await scraper.close()
        proc.kill()
        proc.wait()
    last = seen[-1].metrics
    assert last["process_resident_memory_bytes"] > 0
    assert last["rss_bytes"] > 0
    assert last["threads"] >= 1
    assert "cpu_percent" in last


def test_process_readings_of_this_process() -> None:
    readings = process_readings(psutil.Process())
    assert {"cpu_percent", "rss_bytes", "open_files", "threads"} <= set(readings)
