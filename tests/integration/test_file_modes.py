"""What the controller creates on disk is owner-only: the store holds every spec, environment included."""

from __future__ import annotations

import stat
from pathlib import Path

from novacron.runtime.controller import Controller
from novacron.testing import fleet, http_service_target

from .conftest import healthy


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_store_work_folder_and_logs_are_private(tmp_path: Path, ports: int) -> None:
    spec = fleet(http_service_target("api", ports), store_url=f"sqlite:///{tmp_path / 'state' / 'n.db'}")
    c = Controller(spec, workdir=tmp_path / "work", seed=1)
    await c.start()
    try:
        await healthy(c)
        db = tmp_path / "state" / "n.db"
        assert _mode(db) == 0o600
        assert _mode(db.parent) == 0o700
        assert all(_mode(p) == 0o600 for p in db.parent.glob("n.db-*")), "WAL files follow the database"
        assert _mode(tmp_path / "work") == 0o700
        assert _mode(tmp_path / "work" / "logs") == 0o700
        assert _mode(tmp_path / "work" / "logs" / "api-0.log") == 0o600
    finally:
        await c.stop()
