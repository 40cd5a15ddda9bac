"""Real fleets behind real HAProxy for the traffic tests: a fronted demo target and a bounded load."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

from novacron.benchmarks.experiments_e2e import bounded_load
from novacron.settings import FleetSpec, FrontendSpec
from novacron.testing import fleet, http_service_target
from tests.binaries import require


def service_command(name: str, *flags: str) -> list[str]:
    """The demo service on ``{port}`` with extra flags (error ratio, delay)."""
    return [sys.executable, "-m", "novacron.demo.service", "--name", name, "--port", "{port}", *flags]


def fronted_fleet(
    port: int, listen: int, *, replicas: int = 2, delay_ms: float = 0.0, experiments: Sequence[dict[str, Any]] = ()
) -> FleetSpec:
    """Target ``web`` (the demo service) with ``replicas`` replicas behind a frontend on ``listen``."""
    require("haproxy", package="haproxy")
    flags = ["--delay-ms", str(delay_ms)] if delay_ms else []
    web = http_service_target(
        "web",
        port,
        replicas=replicas,
        command=[sys.executable, "-m", "novacron.demo.service", "--name", "web", "--port", "{port}", *flags],
        frontend=FrontendSpec(listen=f"127.0.0.1:{listen}"),
    )
    data = fleet(web).model_dump(mode="json")
    return FleetSpec.model_validate({**data, "experiments": list(experiments)})


async def load(url: str, *, requests: int, concurrency: int = 8, stop: asyncio.Event | None = None) -> Counter[int]:
    """The benchmark's bounded load generator: up to ``requests`` GETs, stopping early on ``stop``."""
    return await bounded_load(url, requests=requests, concurrency=concurrency, stop=stop)
