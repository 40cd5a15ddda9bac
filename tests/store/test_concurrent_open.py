"""Several processes opening one new SQLite store at once: one migrates, the others find it done."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from novacron.store import Store

OPEN = "import sys; from novacron.store import Store; Store.open(sys.argv[1]).close()"


def test_processes_opening_a_new_store_together_all_succeed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    procs = [subprocess.Popen([sys.executable, "-c", OPEN, url], stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for proc in procs:
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
    store = Store.open(url)
    try:
        assert store.latest_config() is None  # an empty, fully migrated store
    finally:
        store.close()
