"""The demo fleet spec, the port helper, and the whole fleet started for real."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from novacron.demo.fleet import (
    LABEL_FAIL_START_FILE,
    LABEL_MEMORY_LIMIT,
    LABEL_SCRATCH_DIR,
    LABEL_SCRATCH_LIMIT,
    LABEL_URL,
    demo_spec,
    free_port_block,
)
from novacron.settings import HeartbeatCheck, HttpCheck, load_spec, spec_to_yaml
from tests.demo.demo_helpers import Services, wait_until


def test_spec_has_a_dependency_graph_of_real_services(tmp_path: Path) -> None:
    spec = demo_spec(21000, tmp_path)
    names = [t.name for t in spec.targets]
    assert len(names) >= 6
    assert len(set(names)) == len(names)
    deps = {t.name: set(t.depends_on) for t in spec.targets}
    assert deps["gateway"] == {"api"}
    assert deps["api"] == {"auth", "catalog"}
    assert deps["auth"] == deps["catalog"] == deps["worker"] == {"db"}
    for t in spec.targets:
        assert t.command[0] == sys.executable
        http = [c for c in t.checks if isinstance(c, HttpCheck)]
        assert len(http) == 1
        assert http[0].interval_s == 0.1
        assert 1 <= http[0].failures <= 2
        assert http[0].url == f"{t.labels[LABEL_URL]}/health"
        assert Path(t.labels[LABEL_FAIL_START_FILE]).is_relative_to(tmp_path.resolve())
        assert t.port is not None
        assert 21000 <= t.port < 21000 + len(names)
    assert spec.policy.backoff.base_s == 0.2
    assert 0 < spec.policy.blast_radius < 1


def test_predictive_services_declare_their_limits(tmp_path: Path) -> None:
    spec = demo_spec(21000, tmp_path, leak_mb_per_s=0.5, memory_limit_mb=128)
    cache, reports = spec.target("cache"), spec.target("reports")
    assert int(cache.labels[LABEL_MEMORY_LIMIT]) == 128 * 1024 * 1024
    assert "--leak-mb-per-s" in cache.command
    assert reports.cleanup_paths == [reports.labels[LABEL_SCRATCH_DIR]]
    assert int(reports.labels[LABEL_SCRATCH_LIMIT]) > 0
    # About a minute to full at the default rates: longer than the 30 s lead time the
    # forecast acts within, short enough to be seen in the default 60 s demo.
    limit_mb = int(reports.labels[LABEL_SCRATCH_LIMIT]) / 2**20
    fill = float(reports.command[reports.command.index("--fill-mb-per-s") + 1])
    [scratch_limit] = reports.metrics.limits if reports.metrics else []
    assert scratch_limit.lead_time_s < limit_mb / fill < 120


def test_gc_sawtooth_is_opt_in(tmp_path: Path) -> None:
    assert "--sawtooth-mb" not in demo_spec(21000, tmp_path).target("catalog").command
    assert "--sawtooth-mb" in demo_spec(21000, tmp_path, gc_sawtooth=True).target("catalog").command


def test_heartbeats_only_when_a_port_is_given(tmp_path: Path) -> None:
    without = demo_spec(21000, tmp_path)
    assert not any(isinstance(c, HeartbeatCheck) for t in without.targets for c in t.checks)
    spec = demo_spec(21000, tmp_path, heartbeat_udp_port=9123)
    beating = [t for t in spec.targets if any(isinstance(c, HeartbeatCheck) for c in t.checks)]
    assert [t.name for t in beating] == ["worker"]
    assert "127.0.0.1:9123" in beating[0].command
    assert spec.controller.heartbeat_udp_port == 9123


def test_spec_round_trips_through_yaml(tmp_path: Path) -> None:
    spec = demo_spec(21000, tmp_path, heartbeat_udp_port=9123)
    assert load_spec(spec_to_yaml(spec)) == spec


def test_free_port_block_ports_are_bindable() -> None:
    start = free_port_block(4)
    socks = [socket.socket() for _ in range(4)]
    try:
        for i, sock in enumerate(socks):
            sock.bind(("127.0.0.1", start + i))
    finally:
        for sock in socks:
            sock.close()


@given(st.integers().filter(lambda n: not 1 <= n <= 1000))
def test_free_port_block_rejects_bad_sizes(n: int) -> None:
    with pytest.raises(ValueError, match="n: must be"):
        free_port_block(n)


@pytest.mark.slow
def test_whole_fleet_starts_and_answers_through_its_dependencies(services: Services, tmp_path: Path) -> None:
    spec = demo_spec(free_port_block(8), tmp_path)
    for t in spec.targets:
        proc = subprocess.Popen(t.command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        services.procs.append(proc)
    for t in spec.targets:
        url = t.labels[LABEL_URL]
        wait_until(lambda url=url: _healthy(url), what=f"{t.name} healthy")
    gateway = httpx.get(spec.target("gateway").labels[LABEL_URL] + "/", timeout=5)
    assert gateway.status_code == 200
    api = httpx.get(spec.target("api").labels[LABEL_URL] + "/", timeout=5).json()
    assert sorted(api["upstreams"].values()) == [200, 200]


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
