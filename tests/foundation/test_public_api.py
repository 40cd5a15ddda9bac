"""The curated public API is pinned: changing it is a deliberate act."""

from __future__ import annotations

import subprocess
import sys

import novacron

PINNED = {
    "__version__", "Action", "ActionKind", "ActionStatus", "Clock", "ConfigError", "Controller", "FakeClock",
    "Fault", "FaultKind", "FleetSpec", "Incident", "IncidentStatus", "InputError", "MonotonicClock",
    "NovacronError", "Observation", "Outcome", "Policy", "Prediction", "Priority", "RiskLevel", "Store",
    "TargetSpec", "load_spec",
}  # fmt: skip


def test_public_names_are_pinned_and_resolve() -> None:
    assert set(novacron.__all__) == PINNED
    for name in PINNED:
        assert getattr(novacron, name) is not None


def test_importing_the_package_stays_light() -> None:
    code = "import sys, novacron; print(sorted(m for m in ('sqlalchemy', 'numpy', 'pydantic') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
