"""The remote-target server fences actions: an older epoch, or one arriving after its lease ended, is refused."""

from __future__ import annotations

import time

from novacron.demo.remote import RemoteFleet


def _act(fleet: RemoteFleet, key: str, epoch: int, **fence: float) -> int:
    body = {"key": key, "kind": "restart", "target": "r1", "fence": {"node": "n1", "shard": 3, "epoch": epoch, **fence}}
    return fleet.act(body)


def test_an_action_under_an_older_epoch_or_after_its_lease_is_refused() -> None:
    fleet = RemoteFleet()
    fleet.fault("r1")
    assert _act(fleet, "k1", 2, valid_until=time.time() + 5) == 200
    assert "r1" not in fleet.faulted
    assert _act(fleet, "k2", 1) == 409  # a holder whose epoch was replaced
    assert _act(fleet, "k3", 2, valid_until=time.time() - 0.1) == 409  # sent before a pause, arrived after its lease
    assert _act(fleet, "k4", 3) == 200
    assert fleet.summary()["stale_epochs"] == 2
    assert fleet.summary()["duplicate_keys"] == 0
