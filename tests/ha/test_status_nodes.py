"""``novacron status`` in text: several controllers on one store are listed as nodes."""

from __future__ import annotations

import time
from pathlib import Path

from novacron.store import Store, nodes
from novacron.store.nodes import NodeRow

from ..cli.runner import cli


def test_status_text_lists_every_node_sharing_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ha.db'}"
    store = Store.open(url)
    now = time.time()
    try:
        with store.engine.begin() as conn:
            # web-1 beats "in the future": still live however long the CLI takes to start
            for i, (node_id, beat) in enumerate((("web-1", now + 600), ("web-2", now - 60))):
                row = NodeRow(node_id, f"inc-{i}", "host-a", 4711 + i, "9.9", None, now - 100, beat, "active")
                nodes.register(conn, row, stale_s=2.0)
    finally:
        store.close()
    res = cli("status", "--store", url, env={"COLUMNS": "200"})
    assert "nodes: 2" in res.stdout
    lines = {line.split()[0]: line.split() for line in res.stdout.splitlines() if line.startswith("web-")}
    assert lines["web-1"][1] == "active"
    assert lines["web-2"][1] == "dead"  # its heartbeat is a minute old
    assert "Traceback" not in res.stderr
