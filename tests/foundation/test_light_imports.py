"""A supervisor's own cost: `novacron run` without metric watches never loads the heavy libraries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEAVY = ("numpy", "scipy", "pandas", "sklearn", "statsmodels", "matplotlib", "simpy", "torch")

_CONTROLLER = """
import asyncio, sys
from novacron.runtime.controller import Controller
from novacron.testing import fleet
from novacron.settings import TargetSpec, TcpCheck
import novacron.api.app, novacron.cli

async def main():
    t = TargetSpec(name="t", command=["sleep", "30"], checks=[TcpCheck(port=1, interval_s=0.1)])
    c = Controller(fleet(t, store_url="sqlite:///{db}"), workdir=__import__("pathlib").Path("{work}"))
    await c.start()
    await asyncio.sleep(0.5)
    await c.stop()

asyncio.run(main())
print(",".join(m for m in {heavy} if m in sys.modules))
"""


def test_a_controller_without_metric_watches_imports_no_heavy_library(tmp_path: Path) -> None:
    code = _CONTROLLER.format(db=tmp_path / "n.db", work=tmp_path, heavy=HEAVY)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == ""


def test_the_cli_loads_only_what_version_needs() -> None:
    code = (
        "import sys, novacron.cli; "
        "print(','.join(m for m in ('pydantic', 'sqlalchemy', 'rich.console', 'httpx', 'asyncio', 'fastapi') "
        "if m in sys.modules))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert res.stdout.strip() == ""
