"""Priority P0-P4 from impact: monotone in impact, pure, and explicit about its reasons."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from novacron.errors import InputError
from novacron.incidents.priority import ImpactInput, assess, transitive_dependents
from novacron.model import Priority

GRAPH = {"web": ["api"], "api": ["db", "cache"], "worker": ["db"], "report": ["worker"], "db": [], "cache": []}


def test_transitive_dependents_follow_the_graph_upwards() -> None:
    assert transitive_dependents(GRAPH, ["db"]) == {"api", "web", "worker", "report"}
    assert transitive_dependents(GRAPH, ["cache"]) == {"api", "web"}
    assert transitive_dependents(GRAPH, ["web"]) == set()
    assert transitive_dependents({"a": ["b"], "b": ["a"]}, ["a"]) == {"b"}


@pytest.mark.parametrize(
    ("impact", "expected"),
    [
        (ImpactInput(affected=0, fleet_size=20), Priority.P4),
        (ImpactInput(affected=1, fleet_size=20), Priority.P4),
        (ImpactInput(affected=1, fleet_size=20, dependents=1), Priority.P3),
        (ImpactInput(affected=3, fleet_size=20), Priority.P3),
        (ImpactInput(affected=1, fleet_size=20, slo_breached=True), Priority.P2),
        (ImpactInput(affected=1, fleet_size=20, slo_breached=True, automation_failed=True), Priority.P1),
        (ImpactInput(affected=6, fleet_size=20, dependents=5, slo_breached=True), Priority.P0),
        (ImpactInput(affected=10, fleet_size=20, slo_breached=True, automation_failed=True), Priority.P0),
    ],
)
def test_priority_table(impact: ImpactInput, expected: Priority) -> None:
    assert assess(impact).priority is expected


def test_handling_per_priority() -> None:
    p0 = assess(ImpactInput(affected=10, fleet_size=10, dependents=9, slo_breached=True))
    assert (p0.priority, p0.page, p0.watch, p0.automate) == (Priority.P0, True, True, True)
    p4 = assess(ImpactInput(affected=0, fleet_size=10))
    assert (p4.page, p4.automate, p4.log_only) == (False, False, True)
    p2 = assess(ImpactInput(affected=1, fleet_size=20, slo_breached=True))
    assert (p2.page, p2.watch, p2.automate) == (False, False, True)
    assert "SLO breached" in p2.reasons


def test_re_evaluation_raises_priority_when_automation_fails() -> None:
    before = assess(ImpactInput(affected=1, fleet_size=10, dependents=2, slo_breached=True))
    after = assess(ImpactInput(affected=1, fleet_size=10, dependents=2, slo_breached=True, automation_failed=True))
    assert after.priority < before.priority
    assert "automated repair failed" in after.reasons


def test_preventive_incident_never_pages() -> None:
    d = assess(ImpactInput(affected=10, fleet_size=10, dependents=9, preventive=True))
    assert d.priority >= Priority.P2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"affected": 1, "fleet_size": 0}, "fleet_size"),
        ({"affected": 5, "fleet_size": 4}, "affected"),
        ({"affected": -1, "fleet_size": 4}, "affected"),
        ({"affected": 1, "fleet_size": 4, "dependents": -2}, "dependents"),
    ],
)
def test_bad_impact_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as exc:
        ImpactInput(**kwargs)
    assert exc.value.where == field


@given(
    fleet=st.integers(1, 500),
    data=st.data(),
    slo=st.booleans(),
    failed=st.booleans(),
)
def test_more_impact_never_lowers_priority(fleet: int, data: st.DataObject, slo: bool, failed: bool) -> None:
    affected = data.draw(st.integers(0, fleet))
    more = data.draw(st.integers(affected, fleet))
    deps = data.draw(st.integers(0, 50))
    base = assess(ImpactInput(affected, fleet, deps, slo, failed))
    worse = assess(ImpactInput(more, fleet, deps + data.draw(st.integers(0, 10)), slo or True, failed))
    assert worse.priority <= base.priority
    assert base == assess(ImpactInput(affected, fleet, deps, slo, failed))  # pure
