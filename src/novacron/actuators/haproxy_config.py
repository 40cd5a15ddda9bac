"""The HAProxy configuration NovaCron generates from the fleet spec's ``frontend:`` blocks.

One ``frontend``/``backend`` pair per fronted target; each replica is a server ``r<i>``
on its replica port, the spec's fallback a ``backup`` server. Every request is logged on
HAProxy's stdout as ``<backend> <server> <status> <total ms>``, which the actuator reads
for per-arm tallies. A failed connection or a 502/503/504 is retried on another server
(``redispatch``); a 500 is the service's own answer and is passed on, so an experiment
sees a variant's real errors.
"""

from __future__ import annotations

from pathlib import Path

from novacron.actuators.process import replica_port
from novacron.settings import FleetSpec, FrontendSpec, TargetSpec

__all__ = ["LOG_FORMAT", "backend_name", "render_config", "server_name"]

LOG_FORMAT = "%b %s %ST %Ta"
_WEIGHT = 100  # a replica's weight when traffic is even: room for 1 % steps below it


def backend_name(target: str) -> str:
    """The backend that serves ``target``."""
    return f"be_{target}"


def server_name(replica: int) -> str:
    """The server of replica ``replica``."""
    return f"r{replica}"


def _ms(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def _backend(tspec: TargetSpec, fe: FrontendSpec) -> list[str]:
    lines = [
        f"backend {backend_name(tspec.name)}",
        "    balance roundrobin",
        f"    timeout connect {_ms(fe.connect_timeout_s)}",
        f"    timeout server {_ms(fe.server_timeout_s)}",
        f"    retries {fe.retries}",
        "    option redispatch 1",
        "    retry-on conn-failure empty-response junk-response response-timeout 502 503 504",
    ]
    for replica in range(tspec.replicas):
        port = replica_port(tspec, replica)
        lines.append(f"    server {server_name(replica)} 127.0.0.1:{port} weight {_WEIGHT}")
    if fe.fallback is not None:
        lines.append(f"    server fallback {fe.fallback} backup")
    return lines


def render_config(spec: FleetSpec, socket_path: Path) -> str:
    """The whole configuration for every target with a frontend."""
    lines = [
        "global",
        "    log stdout format raw daemon info",
        f"    stats socket {socket_path} mode 600 level admin",
        "    maxconn 4096",
        "defaults",
        "    mode http",
        "    log global",
        f'    log-format "{LOG_FORMAT}"',
        "    timeout client 60s",
        "    timeout connect 1s",
        "    timeout server 30s",
    ]
    for tspec in spec.targets:
        fe = tspec.frontend
        if fe is None:
            continue
        lines += [
            f"frontend fe_{tspec.name}",
            f"    bind {fe.listen}",
            f"    default_backend {backend_name(tspec.name)}",
        ]
        lines += _backend(tspec, fe)
    return "\n".join(lines) + "\n"
