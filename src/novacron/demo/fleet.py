"""The demo fleet: eight real HTTP services with dependencies, as a :class:`FleetSpec`.

::

    gateway ─▶ api ─▶ auth ────┐
                  └─▶ catalog ─┴─▶ db ◀─ worker (also sends UDP heartbeats)
    cache   (leaks memory towards its limit)      reports (fills a scratch dir)

Each service runs ``python -m novacron.demo.service`` with the interpreter running this
code. Labels carry what the chaos monkey and the predictive demo need to know about a
target without parsing its command line (see the ``LABEL_*`` constants).
"""

from __future__ import annotations

import random
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from novacron.errors import TemporaryError
from novacron.model import ActionKind
from novacron.settings import (
    BackoffPolicy,
    CheckSpec,
    ControllerSettings,
    FlapPolicy,
    FleetSpec,
    HeartbeatCheck,
    HttpCheck,
    MetricsSpec,
    MetricWatch,
    Policy,
    ResourceLimit,
    TargetSpec,
)

__all__ = [
    "FLEET_PORTS",
    "LABEL_FAIL_START_FILE",
    "LABEL_MEMORY_LIMIT",
    "LABEL_ROLE",
    "LABEL_SCRATCH_DIR",
    "LABEL_SCRATCH_LIMIT",
    "LABEL_URL",
    "SERVICE_MODULE",
    "demo_spec",
    "free_port_block",
]

SERVICE_MODULE = "novacron.demo.service"
LABEL_URL = "demo.url"  # base URL of the service (POST /chaos goes there)
LABEL_FAIL_START_FILE = "demo.fail_start_file"  # while this file exists the service cannot start
LABEL_ROLE = "demo.role"
LABEL_MEMORY_LIMIT = "limit.memory_bytes"  # RSS above which the service dies (an OOM kill)
LABEL_SCRATCH_DIR = "scratch.dir"  # the directory a clean-up may empty
LABEL_SCRATCH_LIMIT = "limit.scratch_bytes"  # usage at which the scratch dir is full

_MB = 1024 * 1024
# Ports are drawn below Linux's ephemeral range (32768-60999) so outgoing connections
# (probes, upstream calls) can never take a port a demo service is about to bind.
_PORT_RANGE = (20_000, 32_000)


@dataclass(frozen=True, slots=True)
class _Service:
    name: str
    role: str
    upstreams: tuple[str, ...] = ()
    heartbeat: bool = False


@dataclass(frozen=True, slots=True)
class _Limits:
    leak_mb_per_s: float
    memory_limit_mb: float
    fill_mb_per_s: float
    scratch_limit_mb: float
    gc_sawtooth: bool
    deep_checks: bool = False


_TOPOLOGY = (
    _Service("db", "database"),
    _Service("auth", "auth", ("db",)),
    _Service("catalog", "catalog", ("db",)),  # the GC sawtooth, when asked for
    _Service("api", "api", ("auth", "catalog")),
    _Service("gateway", "gateway", ("api",)),
    _Service("worker", "worker", ("db",), heartbeat=True),
    _Service("cache", "memory-leak"),
    _Service("reports", "disk-fill"),
)

FLEET_PORTS = len(_TOPOLOGY)
"""How many consecutive ports :func:`demo_spec` uses from ``base_port``."""


def demo_spec(
    base_port: int,
    workdir: Path,
    *,
    heartbeat_udp_port: int | None = None,
    leak_mb_per_s: float = 2.0,
    memory_limit_mb: float = 128.0,
    fill_mb_per_s: float = 1.6,
    scratch_limit_mb: float = 96.0,
    gc_sawtooth: bool = False,
    deep_checks: bool = False,
) -> FleetSpec:
    """The demo fleet on ports ``base_port .. base_port + 7``, its files under ``workdir``.

    ``cache`` leaks ``leak_mb_per_s`` towards ``memory_limit_mb`` and ``reports`` writes
    ``fill_mb_per_s`` towards ``scratch_limit_mb``: with the defaults each takes about a
    minute to fail, long enough for a forecast to see it coming and act first.
    Heartbeats (from ``worker``) are sent only when ``heartbeat_udp_port`` is given.
    With ``gc_sawtooth`` ``catalog`` grows 24 MB over 30 s and frees it, again and again:
    memory that climbs but is no leak, the case a leak forecast must leave alone.
    With ``deep_checks`` a service with upstreams is checked on ``/`` (which calls each
    upstream's ``/health``), so it fails while a dependency is down, as real services do.
    """
    workdir = workdir.resolve()
    ports = {svc.name: base_port + i for i, svc in enumerate(_TOPOLOGY)}
    limits = _Limits(leak_mb_per_s, memory_limit_mb, fill_mb_per_s, scratch_limit_mb, gc_sawtooth, deep_checks)
    targets = [_target(svc, ports, workdir, limits, heartbeat_udp_port) for svc in _TOPOLOGY]
    policy = Policy(
        # Chaos hits the same few services again and again; rates are generous so the
        # demo shows healing, while the flap rail still catches a truly broken service.
        max_actions_per_target_per_hour=240,
        backoff=BackoffPolicy(base_s=0.2, cap_s=5.0, jitter=0.2),
        flap=FlapPolicy(window_s=60.0, threshold=8, quarantine_s=30.0),
        blast_radius=0.5,
        verify_timeout_s=3.0,
        approval_required=["critical"],
    )
    controller = ControllerSettings(
        store_url=f"sqlite:///{workdir / 'novacron.db'}",
        heartbeat_udp_port=heartbeat_udp_port or 0,
    )
    return FleetSpec(name="novacron-demo", policy=policy, controller=controller, targets=targets)


def _target(
    svc: _Service,
    ports: dict[str, int],
    workdir: Path,
    limits: _Limits,
    heartbeat_udp_port: int | None,
) -> TargetSpec:
    port = ports[svc.name]
    url = f"http://127.0.0.1:{port}"
    fail_file = workdir / "config" / f"{svc.name}.broken"
    command = [sys.executable, "-m", SERVICE_MODULE, "--name", svc.name, "--port", str(port)]
    command += ["--fail-start-file", str(fail_file)]
    for up in svc.upstreams:
        command += ["--upstream", f"http://127.0.0.1:{ports[up]}"]
    cleanup: list[str] = []
    labels = {LABEL_URL: url, LABEL_FAIL_START_FILE: str(fail_file), LABEL_ROLE: svc.role}
    checks: list[CheckSpec] = [
        # 100 ms probes and a 250 ms timeout catch a hang well inside a second; two
        # failures in a row keep one slow answer on a busy machine from causing an action.
        HttpCheck(
            url=f"{url}/{'' if limits.deep_checks and svc.upstreams else 'health'}",
            interval_s=0.1,
            timeout_s=0.25,
            failures=2,
        )
    ]
    if svc.role == "memory-leak":
        command += ["--leak-mb-per-s", str(limits.leak_mb_per_s)]
        command += ["--memory-limit-mb", str(limits.memory_limit_mb)]
        labels[LABEL_MEMORY_LIMIT] = str(int(limits.memory_limit_mb * _MB))
    if svc.name == "catalog" and limits.gc_sawtooth:
        command += ["--sawtooth-mb", "24", "--sawtooth-period-s", "30"]
    if svc.role == "disk-fill":
        scratch = workdir / "scratch" / svc.name
        command += ["--scratch-dir", str(scratch), "--fill-mb-per-s", str(limits.fill_mb_per_s)]
        command += ["--scratch-cap-mb", str(limits.scratch_limit_mb)]
        labels[LABEL_SCRATCH_DIR] = str(scratch)
        cleanup.append(str(scratch))
        labels[LABEL_SCRATCH_LIMIT] = str(int(limits.scratch_limit_mb * _MB))
    metrics = _metrics(svc, url, limits)
    if svc.heartbeat and heartbeat_udp_port:
        command += ["--heartbeat-udp", f"127.0.0.1:{heartbeat_udp_port}", "--heartbeat-interval-s", "0.1"]
        checks.append(HeartbeatCheck(expected_interval_s=0.1, phi_threshold=8.0, min_std_s=0.1))
    return TargetSpec(
        name=svc.name,
        command=command,
        port=port,
        # Ports are fixed per service, so a second replica would collide: scaling is off.
        replicas=1,
        max_replicas=1,
        start_timeout_s=3.0,
        stop_timeout_s=0.5,  # SIGTERM ends a demo service in ~10 ms; a hung one needs SIGKILL
        checks=checks,
        depends_on=list(svc.upstreams),
        labels=labels,
        cleanup_paths=cleanup,
        metrics=metrics,
    )


# Latency creeps and CPU spins stay under the probe timeout: only these detectors see them.
# The ensembles are the "latency" and "cpu" defaults with a shorter calibration (60 steps,
# 30 s at the demo's 0.5 s step) and a sustained-alarm rule (8 steps): a one-off slow
# answer on a busy machine must never restart a healthy service. Measured on noisy series
# with 3 % spikes: no false alarm in 6,000 steps; a creep or spin alarms within ~8 steps.
METRIC_STEP_S = 0.5
METRIC_WARMUP_S = 60 * METRIC_STEP_S
_SUSTAINED = {"exit_threshold": 0.3, "min_duration": 8}
_WATCHES = (
    MetricWatch(
        metric="probe_latency_s",
        type="latency",
        detector={
            "detector": "ensemble",
            "params": {
                "min_history": 60,
                "alarm": 0.45,
                "members": [
                    {"name": "zscore", "side": "up"},
                    {"name": "holt_winters", "side": "up", "period_daily": 0, "period_weekly": 0},
                    {"name": "cusum", "k": 1.0, "side": "up"},
                ],
            },
            **_SUSTAINED,
        },
    ),
    MetricWatch(
        metric="cpu_percent",
        type="cpu",
        detector={
            "detector": "ensemble",
            "params": {
                "min_history": 60,
                "alarm": 0.45,
                "members": [{"name": "zscore", "side": "up"}, {"name": "cusum", "k": 0.5, "side": "up"}],
            },
            **_SUSTAINED,
        },
    ),
)
# Act this long before a forecast exhaustion: a restart or clean-up takes well under a second,
# and half a minute leaves room for the forecast's own error.
_LEAD_TIME_S = 30.0


def _metrics(svc: _Service, url: str, limits: _Limits) -> MetricsSpec:
    """Metric watches for every service, plus the resource limit of the leak and fill services."""
    bounded: list[ResourceLimit] = []
    if svc.role == "memory-leak":
        bounded.append(ResourceLimit(metric="rss_bytes", limit=limits.memory_limit_mb * _MB, lead_time_s=_LEAD_TIME_S))
    if svc.role == "disk-fill":
        bounded.append(
            ResourceLimit(
                metric="scratch_used_bytes",
                limit=limits.scratch_limit_mb * _MB,
                action=ActionKind.CLEANUP,
                lead_time_s=_LEAD_TIME_S,
            )
        )
    return MetricsSpec(interval_s=METRIC_STEP_S, url=f"{url}/metrics", watch=list(_WATCHES), limits=bounded)


def free_port_block(n: int, *, host: str = "127.0.0.1", attempts: int = 200) -> int:
    """The first of ``n`` consecutive TCP ports on ``host`` that are free right now.

    Raises :class:`~novacron.errors.TemporaryError` if no block was found. Another process
    can still take a port between this check and its use; callers bind soon after.
    """
    if not 1 <= n <= 1000:
        raise ValueError(f"n: must be in [1, 1000], got {n}")
    rng = random.Random()
    for _ in range(attempts):
        start = rng.randrange(_PORT_RANGE[0], _PORT_RANGE[1] - n)
        if _all_free(host, range(start, start + n)):
            return start
    raise TemporaryError(f"no block of {n} free ports on {host} after {attempts} tries", delay=1.0)


def _all_free(host: str, ports: range) -> bool:
    held: list[socket.socket] = []
    try:
        for port in ports:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(sock)
            sock.bind((host, port))
    except OSError:
        return False
    finally:
        for sock in held:
            sock.close()
    return True
