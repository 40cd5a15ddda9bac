"""A lease that lapses for one heartbeat: the targets handed over and taken back are still watched."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client import CollectorRegistry

from novacron.runtime.controller import Controller
from novacron.settings import load_spec
from novacron.telemetry import Metrics

from ..integration.conftest import eventually
from .cluster import remote_server, remote_spec


async def test_targets_handed_over_and_taken_back_at_once_are_still_probed(tmp_path: Path) -> None:
    # On a loaded machine a late renewal can hand a node's shards over and its next round
    # take them back a moment later; stopping the old probes must not take the new ones away.
    with remote_server() as remote:
        spec = load_spec(remote_spec(tmp_path, remote.base, 4))
        c = Controller(
            spec, workdir=tmp_path, store_url=f"sqlite:///{tmp_path / 'n.db'}", metrics=Metrics(CollectorRegistry())
        )
        await c.start()
        try:
            names = [f"r{i}" for i in range(4)]
            await eventually(lambda: sorted(c.ha.owned()) == names, what="every target owned")
            await eventually(lambda: all(c.health.is_healthy(n) for n in names), what="every target healthy")
            c.ha.on_lost(names)
            c.ha.on_gained(names)
            await asyncio.sleep(0.3)  # the stopped probes wind down
            assert {t for t, _replica, _source in c.prober.timeouts()} == set(names)
            remote.fault("r2")
            await eventually(lambda: c.incidents.open_for("r2") is not None, what="the fault on r2 detected")
        finally:
            await c.stop()
