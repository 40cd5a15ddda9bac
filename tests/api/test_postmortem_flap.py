"""The post-mortem of a flap lists the incidents that caused it and says how it really ended."""

from __future__ import annotations

from pathlib import Path

from novacron.api.views import postmortem_for
from novacron.clock import FakeClock
from novacron.incidents.lifecycle import IncidentManager
from novacron.incidents.postmortem import render_markdown
from novacron.model import Fault, FaultId, FaultKind, Priority, TargetId
from novacron.settings import parse_spec, spec_to_yaml
from novacron.store import Store
from novacron.telemetry import Metrics


def _crash(n: int, clock: FakeClock) -> Fault:
    return Fault(FaultId(f"f-{n}"), TargetId("api"), FaultKind.CRASH, clock.now(), clock.now(), {"exit_code": 1})


def test_a_flap_post_mortem_lists_the_incidents_behind_it(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    spec = parse_spec({"policy": {"flap": {"window_s": 60, "threshold": 3}}, "targets": []})
    store.save_config(spec_to_yaml(spec), source="test", now=0.0)
    clock = FakeClock(start=1_800_000_000.0)
    manager = IncidentManager(store, clock, Metrics())
    old, _ = manager.on_fault(_crash(0, clock))  # outside the window: not part of the flap
    manager.resolve(old, healed_by="restart verified")
    clock.advance(120)
    earlier = []
    for n in (1, 2):
        inc, _ = manager.on_fault(_crash(n, clock))
        manager.resolve(inc, healed_by="restart verified")
        earlier.append(inc.id)
        clock.advance(10)
    flap, _ = manager.on_fault(_crash(3, clock))
    manager.escalate(flap, "flapping: 3 incidents within 60s; quarantined", priority=Priority.P1)
    clock.advance(30)
    manager.resolve(flap, healed_by="recovered without further action")

    md = render_markdown(postmortem_for(store, flap.id))
    store.close()
    section = md.split("## Incidents behind the flap")[1].split("## ")[0]
    assert all(i in section for i in earlier)
    assert old.id not in section
    assert "It recovered without further action." in md
    assert "Repaired by" not in md
    assert "Escalated to a human: flapping" in md
    assert "No actions were taken." in md
    assert "Every action taken worked" not in md
    assert "A human was needed" in md
