"""The Prometheus source against a REAL Prometheus scraping a loopback exporter.

Needs the Debian package ``prometheus`` (``apt-get install -y prometheus``); without the
binary this test fails with that hint instead of skipping.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from novacron.errors import InputError
from novacron.sensors.prometheus import (
    PrometheusClient,
    PrometheusUnavailableError,
    to_observations,
)

from ..binaries import free_port, require, running, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exporter() -> Iterator[int]:
    """A real /metrics endpoint (prometheus_client) for two demo targets."""
    registry = CollectorRegistry()
    up = Gauge("demo_healthy", "1 when the demo target is healthy", ["target"], registry=registry)
    up.labels("api-0").set(1)
    up.labels("db-0").set(0)
    Counter("demo_requests", "requests served", ["target"], registry=registry).labels("api-0").inc(42)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    yield port
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def prometheus(exporter: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = require("prometheus", package="prometheus")
    tmp = tmp_path_factory.mktemp("prometheus")
    config = tmp / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - {{job_name: demo, static_configs: [{{targets: ['127.0.0.1:{exporter}']}}]}}\n"
    )
    port = free_port()
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    url = f"http://127.0.0.1:{port}"
    with running(argv, tmp / "prometheus.log") as proc:
        wait_until(lambda: _scraped_twice(url), proc, tmp / "prometheus.log", "prometheus", 60)
        yield url


def _scraped_twice(url: str) -> bool:
    """The exporter has been scraped at least twice, so rates and ranges exist."""
    r = httpx.get(f"{url}/api/v1/query", params={"query": "count_over_time(up{job='demo'}[1m])"})
    result = r.json()["data"]["result"] if r.status_code == 200 else []
    return bool(result) and float(result[0]["value"][1]) >= 2


async def test_instant_vector_becomes_observations(prometheus: str) -> None:
    async with PrometheusClient(prometheus) as prom:
        result = await prom.query("demo_healthy")
        assert result.result_type == "vector"
        by_target = {s.labels["target"]: s.value for s in result.samples}
        assert by_target == {"api-0": 1.0, "db-0": 0.0}
        obs = to_observations(result.samples, metric="healthy", target_label="target", healthy_if=(1, 1))
        health = {o.target: o.healthy for o in obs}
        assert health == {"api-0": True, "db-0": False}
        assert all(o.source == "prometheus" and o.metrics["healthy"] in {0.0, 1.0} for o in obs)


async def test_range_query_returns_series(prometheus: str) -> None:
    async with PrometheusClient(prometheus) as prom:
        now = time.time()
        series = await prom.query_range("demo_requests_total", start=now - 30, end=now, step=1)
        assert len(series) == 1
        (s,) = series
        assert s.labels["target"] == "api-0"
        assert len(s.times) == len(s.values) >= 1
        assert all(b - a == pytest.approx(1.0) for a, b in zip(s.times, s.times[1:], strict=False))
        assert set(s.values) == {42.0}


async def test_scalar_string_and_nan(prometheus: str) -> None:
    async with PrometheusClient(prometheus) as prom:
        assert (await prom.query("scalar(sum(demo_healthy))")).scalar == 1.0
        assert (await prom.query('"hello"')).text == "hello"
        assert math.isnan((await prom.query("0/0")).scalar or 0.0)


async def test_bad_query_is_an_input_error_naming_it(prometheus: str) -> None:
    async with PrometheusClient(prometheus) as prom:
        with pytest.raises(InputError, match="bad_data") as exc:
            await prom.query("sum(")
        assert "sum(" in exc.value.where
        with pytest.raises(InputError, match="range vector"):
            await prom.query("demo_healthy[1m]")
        with pytest.raises(InputError, match="step"):
            await prom.query_range("up", start=0, end=1, step=0)


async def test_unreachable_server_is_temporary() -> None:
    async with PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout_s=2) as prom:
        with pytest.raises(PrometheusUnavailableError):
            await prom.query("up")
