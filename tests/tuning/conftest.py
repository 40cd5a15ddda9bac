"""A small fleet spec with a tuning block whose twin runs take a fraction of a second."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml


def tuning_spec(tmp_path: Path, *, policy: dict[str, Any] | None = None, **tuning: Any) -> Path:
    """Write a spec with one HTTP target and a tuning block (keys override the defaults)."""
    block: dict[str, Any] = {
        "method": "gp",
        "budget": 4,
        "seeds": [0],
        "validation_seeds": [100],
        "recheck": 2,
        "params": [
            {"path": "targets.api.checks.0.interval_s", "type": "log", "bounds": [5, 40]},
            {"path": "targets.api.checks.0.failures", "type": "int", "bounds": [1, 4]},
            {"path": "twin.max_restarts", "type": "int", "bounds": [1, 3]},
        ],
        "objectives": {"mttr_mean_s": 1.0, "false_actions_per_day": 0.005},
        "scenario": {"hosts": 2, "vms": 8, "window_s": 200, "tail_s": 100, "fault_rate_per_hour": 90},
        "evolve": {"population": 6, "generations": 2, "services": 3},
    }
    block.update(tuning)
    spec = {
        "name": "shop",
        "policy": policy or {},
        "controller": {"store_url": f"sqlite:///{tmp_path / 'n.db'}", "workdir": str(tmp_path / "work")},
        "targets": [
            {
                "name": "api",
                "command": ["python3", "-m", "http.server", "{port}"],
                "port": 18080,
                "checks": [{"type": "http", "url": "http://127.0.0.1:{port}/", "interval_s": 5, "failures": 2}],
            }
        ],
        "tuning": block,
    }
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    """The default small tuning spec."""
    return tuning_spec(tmp_path)
