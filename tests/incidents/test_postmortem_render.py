"""Post-mortems come from the record: every section present, facts right, HTML escaped."""

from __future__ import annotations

import dataclasses
from html.parser import HTMLParser

from novacron.incidents.postmortem import ActionRecord, build_postmortem, render_html, render_markdown
from novacron.model import (
    Action,
    ActionId,
    ActionKind,
    FaultKind,
    Incident,
    IncidentId,
    IncidentStatus,
    Outcome,
    Priority,
    RiskLevel,
    TargetId,
    TimelineEvent,
)

T0 = 1_795_287_600.0
INCIDENT = Incident(
    id=IncidentId("inc-42"),
    target=TargetId("api-0"),
    kind=FaultKind.HANG,
    status=IncidentStatus.RESOLVED,
    priority=Priority.P1,
    opened_at=T0 + 0.4,
    since=T0,
    resolved_at=T0 + 12.5,
    fault_count=3,
    summary="api-0 stopped answering <health>",
)


def action(n: int, kind: ActionKind) -> Action:
    return Action(
        id=ActionId(f"a{n}"),
        kind=kind,
        target=TargetId("api-0"),
        risk=RiskLevel.LOW,
        idempotency_key=f"k{n}",
        incident_id=INCIDENT.id,
    )


ACTIONS = [
    ActionRecord(
        action(1, ActionKind.RESTART),
        "failed",
        Outcome(ActionId("a1"), ok=False, started_at=T0 + 1, finished_at=T0 + 4, detail="still hanging | 504"),
    ),
    ActionRecord(
        action(2, ActionKind.REPLACE),
        "verified",
        Outcome(ActionId("a2"), ok=True, started_at=T0 + 5, finished_at=T0 + 12, detail="health 200"),
    ),
]
TIMELINE = [
    TimelineEvent(T0 + 12.5, "resolved", "verified healthy"),
    TimelineEvent(T0 + 0.4, "detected", "probe timeout", {"probe": "http"}),
    TimelineEvent(T0 + 0.6, "diagnosed", "root cause: api-0 itself", {"score": 0.91}),
]


def test_markdown_has_every_section_with_the_recorded_facts() -> None:
    pm = build_postmortem(INCIDENT, TIMELINE, ACTIONS, evidence={"log": "deadlock in pool"}, impact={"users": "5%"})
    md = render_markdown(pm)
    for heading in (
        "# Post-mortem: incident inc-42",
        "## Summary",
        "## Impact",
        "## Timeline",
        "## Detection and repair times",
        "## Root-cause evidence",
        "## Actions and verification",
        "## What did not work",
        "## Follow-ups",
    ):
        assert heading in md
    assert "MTTD (fault start → detection): 400 ms" in md
    assert "MTTR (fault start → verified recovery): 12.5 s" in md
    assert "Repaired by replace." in md
    assert "log: deadlock in pool" in md
    assert "diagnosed: root cause: api-0 itself (score=0.91)" in md
    assert "users: 5%" in md
    assert "still hanging \\| 504" in md  # table cells escape pipes
    lines = md.splitlines()
    timeline_rows = [ln for ln in lines if ln.startswith("| 2026-")]
    assert [r.split(" | ")[2] for r in timeline_rows] == ["detected", "diagnosed", "resolved"]
    assert "Find out why `restart` did not repair `api-0`" in md
    assert "3 signals were merged" in md


def test_unresolved_incident_without_data_says_so() -> None:
    open_inc = dataclasses.replace(INCIDENT, status=IncidentStatus.NEEDS_HUMAN, resolved_at=None, fault_count=1)
    md = render_markdown(build_postmortem(open_inc, [], []))
    assert "still needs_human" in md
    assert "MTTR (fault start → verified recovery): not recovered" in md
    assert "No timeline events were recorded." in md
    assert "No actions were taken." in md
    assert "No root-cause evidence was recorded." in md
    assert "assign an owner" in md


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_is_well_formed_escaped_and_matches_markdown() -> None:
    pm = build_postmortem(INCIDENT, TIMELINE, ACTIONS)
    page = render_html(pm, standalone=True)
    parser = _Collector()
    parser.feed(page)
    assert "script" not in parser.tags
    assert parser.tags.count("h2") == 8
    assert parser.tags.count("table") == 2
    assert "<health>" not in page
    assert "&lt;health&gt;" in page
    assert "api-0 stopped answering <health>" in "".join(parser.text)
    assert "<code>api-0</code>" in page
    assert render_html(pm).startswith("<article")
