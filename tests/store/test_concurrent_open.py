"""Several processes opening one new SQLite store at once: one migrates, the others wait and use it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from novacron.store import Store

_OPEN = "import sys; from novacron.store import Store; Store.open(sys.argv[1]).close()"


def test_processes_opening_a_new_store_at_once_all_succeed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    procs = [subprocess.Popen([sys.executable, "-c", _OPEN, url], stderr=subprocess.PIPE, text=True) for _ in range(4)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    store = Store.open(url)
    try:
        assert store.target_statuses() == []  # the schema is whole and usable
    finally:
        store.close()
