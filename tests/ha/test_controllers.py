"""Three `novacron run` processes on one PostgreSQL store share remote targets, fail over, fence, drain."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .cluster import Cluster, Remote, cli, remote_server, remote_spec, wait_for

N_TARGETS = 8


@pytest.fixture
def remote() -> Iterator[Remote]:
    with remote_server() as r:
        yield r


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str, remote: Remote) -> Iterator[Cluster]:
    c = Cluster(remote_spec(tmp_path, remote.base, N_TARGETS), pg_url, tmp_path)
    try:
        yield c
    finally:
        c.stop_all()


def _nodes(c: Cluster) -> list[dict[str, object]]:
    res = cli("node", "list", "--store", c.store_url, "--json")
    assert res.returncode == 0, res.stderr
    return list(json.loads(res.stdout))


def _spread(c: Cluster, live: set[str]) -> None:
    def settled() -> bool:
        nodes = {str(n["id"]): n for n in _nodes(c)}
        owners = {c.owner(f"r{i}") for i in range(N_TARGETS)}
        return owners <= live and None not in owners and sum(int(str(nodes[n]["targets"])) for n in live) == N_TARGETS

    wait_for(settled, f"every target owned by {sorted(live)}")


def _first_action_on(remote: Remote, target: str, *, after: float) -> dict[str, object] | None:
    return next((a for a in remote.actions() if a["target"] == target and a["at"] > after), None)


def test_failover_after_sigkill_and_sigstop_with_fencing_and_no_duplicate(cluster: Cluster, remote: Remote) -> None:
    for node_id in ("n1", "n2", "n3"):
        cluster.start(node_id)
    _spread(cluster, {"n1", "n2", "n3"})

    # SIGKILL the owner of a failing target: another node acts on it
    victim = cluster.owner("r0")
    assert victim is not None
    remote.fault("r0")
    killed_at = time.time()
    cluster.signal(victim, signal.SIGKILL)
    act = wait_for(lambda: _first_action_on(remote, "r0", after=killed_at), "an action on r0 by a new owner")
    assert act["fence"]["node"] != victim  # type: ignore[index]

    # SIGSTOP the owner of another failing target: taken over; woken, it does nothing
    live = {"n1", "n2", "n3"} - {victim}
    _spread(cluster, live)
    target = next(f"r{i}" for i in range(1, N_TARGETS) if cluster.owner(f"r{i}") in live)
    paused = cluster.owner(target)
    assert paused is not None
    remote.fault(target)
    stopped_at = time.time()
    cluster.signal(paused, signal.SIGSTOP)
    act = wait_for(lambda: _first_action_on(remote, target, after=stopped_at), f"an action on {target}")
    assert act["fence"]["node"] not in (paused, victim)  # type: ignore[index]
    cluster.signal(paused, signal.SIGCONT)
    _spread(cluster, live)  # the woken node gets its fair share back, through new leases

    summary = remote.summary()
    assert summary["duplicate_keys"] == 0
    assert summary["stale_epochs"] == 0, "no action reached the world under an old epoch"
    status = json.loads(cli("status", "--store", cluster.store_url, "--json").stdout)
    states = {n["id"]: n["state"] for n in status["nodes"]}
    assert states[victim] == "dead"
    assert all(states[n] == "active" for n in live)


def test_a_drained_node_hands_its_targets_over_and_takes_them_back(cluster: Cluster) -> None:
    for node_id in ("n1", "n2"):
        cluster.start(node_id)
    _spread(cluster, {"n1", "n2"})
    res = cli("node", "drain", "n2", "--store", cluster.store_url)
    assert res.returncode == 0, res.stderr
    _spread(cluster, {"n1"})
    assert {str(n["id"]): n["state"] for n in _nodes(cluster)}["n2"] == "draining"
    assert cli("node", "undrain", "n2", "--store", cluster.store_url).returncode == 0
    _spread(cluster, {"n1", "n2"})
    missing = cli("node", "drain", "nope", "--store", cluster.store_url)
    assert missing.returncode == 1
    assert "no node 'nope'" in missing.stderr


def test_a_second_controller_with_the_same_node_id_is_refused(cluster: Cluster) -> None:
    cluster.start("n1")
    res = cli("run", "-c", str(cluster.spec), "--store", cluster.store_url, "--node-id", "n1")
    assert res.returncode == 2
    assert "node id 'n1' is in use by a live controller" in res.stderr
    assert "Traceback" not in res.stderr
