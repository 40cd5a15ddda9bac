"""Warm states on disk: one pair of files per guest, whatever dots the target's name holds."""

from __future__ import annotations

import json
from pathlib import Path

from novacron.actuators.qemu import QemuActuator
from novacron.clock import FakeClock
from novacron.testing import fleet, http_service_target


class _Quiet:
    """A process listener that needs to hear nothing (no guest is started here)."""

    def on_started(self, target: str, replica: int, pid: int, port: int | None, create_time: float) -> None:
        """Nothing is started."""

    def on_exited(self, target: str, replica: int, pid: int, code: int | None, expected: bool) -> None:
        """Nothing exits."""

    def on_spawn_failed(self, target: str, replica: int, error: str) -> None:
        """Nothing is spawned."""


def _record(directory: Path, target: str, replica: int) -> None:
    """A saved state as ``WarmRestore`` writes it: the stream, and its record beside it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{target}-{replica}.state").write_bytes(b"stream")
    doc = {"fingerprint": {"argv": [target, replica]}, "digest": "crc32:0", "bytes": 6, "saved_at": 1.0}
    (directory / f"{target}-{replica}.json").write_text(json.dumps(doc))


def test_replicas_and_targets_with_dots_keep_their_own_saved_states(tmp_path: Path) -> None:
    vms = QemuActuator(
        fleet(http_service_target("web", 9000)), clock=FakeClock(), log_dir=tmp_path / "logs", listener=_Quiet()
    )
    warm, directory = vms.warm, tmp_path / "warm"
    for target, replica in (("api.v1", 0), ("api.v1", 1), ("api.v2", 0)):
        _record(directory, target, replica)
    states = {(t, r): warm.saved(t, r) for t, r in (("api.v1", 0), ("api.v1", 1), ("api.v2", 0))}
    assert all(s is not None for s in states.values())
    assert {s.fingerprint["argv"][0] for s in states.values() if s is not None} == {"api.v1", "api.v2"}
    assert len({s.path for s in states.values() if s is not None}) == 3
    warm.forget("api.v1")
    assert warm.saved("api.v1", 0) is None
    assert warm.saved("api.v1", 1) is None
    assert warm.saved("api.v2", 0) is not None
