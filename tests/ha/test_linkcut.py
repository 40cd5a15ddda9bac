"""Controllers on hosts of their own (network namespaces with veth links): one is cut off by taking its link down."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from novacron.benchmarks import _hosts
from novacron.store import Store, leases

from .cluster import Cluster, Remote, remote_server, remote_spec, wait_for

N_TARGETS = 8
pytestmark = pytest.mark.skipif(_hosts.unavailable() is not None, reason=f"network namespaces: {_hosts.unavailable()}")


def _leases(url: str) -> dict[int, leases.LeaseRow]:
    store = Store.open(url)
    try:
        with store.engine.connect() as conn:
            return {r.shard: r for r in leases.leases(conn)}
    finally:
        store.close()


def _holders(url: str) -> dict[int, str | None]:
    now = time.time()
    return {s: r.holder if r.expires_at > now else None for s, r in _leases(url).items()}


def _by(remote: Remote, node: str, target: str | None = None) -> list[dict[str, Any]]:
    return [a for a in remote.actions() if a["fence"]["node"] == node and (target is None or a["target"] == target)]


@pytest.mark.slow
@pytest.mark.timeout(400)  # a PostgreSQL server and two controllers start as separate processes
def test_a_controller_whose_link_is_cut_loses_its_leases_and_acts_on_nothing(tmp_path: Path) -> None:
    with (
        _hosts.hosts(2) as hosts,
        _hosts.private_postgres([hosts.address]) as admin,
        remote_server(hosts.address) as remote,
    ):
        url = admin.replace("postgresql://", "postgresql+psycopg://")
        spec = remote_spec(tmp_path, remote.base, N_TARGETS)
        cluster = Cluster(spec, url, tmp_path, prefixes={"n1": hosts.prefix(0), "n2": hosts.prefix(1)})
        try:
            cluster.start("n1")
            cluster.start("n2")
            targets = [f"r{i}" for i in range(N_TARGETS)]
            shards = {t: leases.shard_of(t, 64) for t in targets}
            wait_for(lambda: {_holders(url)[shards[t]] for t in targets} == {"n1", "n2"}, "both nodes own targets")
            target = next(t for t in targets if _holders(url)[shards[t]] == "n1")
            before = {s: r.epoch for s, r in _leases(url).items() if r.holder == "n1"}

            remote.fault(target)
            hosts.cut(0)  # n1's cable is pulled: it reaches neither PostgreSQL nor the targets
            cut_at = time.time()
            act = wait_for(lambda: next(iter(_by(remote, "n2", target)), None), f"n2 acting on {target}")
            assert float(act["at"]) > cut_at
            wait_for(lambda: all(_holders(url)[shards[t]] == "n2" for t in targets), "n2 holding every target's lease")
            wait_for(
                lambda: "cannot reach the store to renew leases" in cluster.nodes["n1"].log.read_text(),
                "n1 noticing it lost the store",
            )
            remote.fault(next(t for t in targets if t != target))  # n2 heals it alone
            time.sleep(3.0)
            restored_at = time.time()
            hosts.restore(0)

            # back on the network, n1 gets its share again, under new epochs only
            wait_for(lambda: {_holders(url)[shards[t]] for t in targets} == {"n1", "n2"}, "n1 taking its share back")
            again = _leases(url)
            assert all(again[s].epoch > e for s, e in before.items() if again[s].holder == "n1")
            assert not [a for a in _by(remote, "n1") if cut_at < float(a["at"]) < restored_at], (
                "nothing acted while cut off"
            )
            summary = remote.summary()
            assert summary["duplicate_keys"] == 0
            assert summary["stale_epochs"] == 0
            assert cluster.nodes["n1"].proc.poll() is None, "a cut link is survived, not fatal"
        finally:
            cluster.stop_all()
