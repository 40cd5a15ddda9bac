"""Escalation: a pure schedule of pages, stopped by acknowledgement, delivered via the notifier."""

from __future__ import annotations

import dataclasses

import pytest

from novacron.errors import ConfigError, InputError
from novacron.incidents.escalation import Escalator, pages_due, parse_policy
from novacron.model import FaultKind, Incident, IncidentId, IncidentStatus, Priority, TargetId
from novacron.notify import MemoryOutbox, Notification, Notifier, SlackChannel

POLICY = parse_policy(
    {
        "name": "ops",
        "levels": [
            {"notify": ["pd-primary"], "after_s": 0, "repeat_every_s": 300, "max_repeats": 2},
            {"notify": ["pd-secondary", "slack"], "after_s": 900},
        ],
    }
)


def incident(priority: Priority = Priority.P0, status: IncidentStatus = IncidentStatus.OPEN) -> Incident:
    return Incident(
        id=IncidentId("inc-9"),
        target=TargetId("db-0"),
        kind=FaultKind.CRASH,
        status=status,
        priority=priority,
        opened_at=1000.0,
        since=990.0,
        summary="db-0 keeps crashing",
    )


def _escalator(outbox: MemoryOutbox) -> Escalator:
    channels = [SlackChannel(n, "http://unused") for n in ("pd-primary", "pd-secondary", "slack")]
    return Escalator(POLICY, Notifier(outbox, channels))


def test_schedule_repeats_then_widens() -> None:
    due = pages_due(POLICY, started_at=0.0, now=1000.0)
    assert [(p.level, p.repeat, p.due_at) for p in due] == [(0, 0, 0.0), (0, 1, 300.0), (0, 2, 600.0), (1, 0, 900.0)]
    assert due[-1].receivers == ("pd-secondary", "slack")


def test_escalator_sends_each_page_once_and_stops_on_ack() -> None:
    outbox = MemoryOutbox()
    esc = _escalator(outbox)
    inc = incident()
    assert [p.key for p in esc.poll(inc, now=0.0)] == ["0.0"]
    assert esc.poll(inc, now=10.0) == []
    assert [p.key for p in esc.poll(inc, now=310.0)] == ["0.1"]
    assert esc.acknowledge(inc, now=320.0, by="alice") == ["pd-primary"]
    assert esc.poll(inc, now=5000.0) == []
    assert esc.acknowledge(inc, now=5001.0) == []
    assert esc.resolve(inc, now=6000.0) == ["pd-primary"]
    events = [(i.channel, i.notification.event) for i in outbox.pending()]
    assert events == [
        ("pd-primary", "trigger"),
        ("pd-primary", "trigger"),
        ("pd-primary", "acknowledge"),
        ("pd-primary", "resolve"),
    ]
    first = outbox.pending()[0].notification
    assert first.dedup_key == "novacron-inc-9"
    assert first.severity == "critical"
    assert first.summary == "db-0 keeps crashing"


def test_a_repeat_due_before_the_ack_but_not_yet_polled_is_never_sent() -> None:
    outbox = MemoryOutbox()
    esc = _escalator(outbox)
    inc = incident()
    esc.poll(inc, now=0.0)
    esc.acknowledge(inc, now=320.0, by="alice")  # the repeat fell due at 300, no poll since
    assert esc.poll(inc, now=321.0) == []
    assert [i.notification.event for i in outbox.pending()] == ["trigger", "acknowledge"]


def test_state_survives_a_restart_without_repaging() -> None:
    first = Escalator(POLICY)
    inc = incident()
    first.poll(inc, now=0.0)
    first.poll(inc, now=310.0)
    snapshot = first.state(inc.id)
    assert snapshot is not None
    assert snapshot.sent == {"0.0", "0.1"}
    second = Escalator(POLICY)
    second.restore(inc.id, snapshot)
    assert [p.key for p in second.poll(inc, now=620.0)] == ["0.2"]
    assert second.resolve(inc, now=700.0) == ["pd-primary"]
    assert second.state(inc.id) is None


def test_repeats_missed_while_nobody_polled_are_one_page_the_newest_of_each_level() -> None:
    esc = _escalator(MemoryOutbox())
    inc = incident()
    assert [p.key for p in esc.poll(inc, now=0.0)] == ["0.0"]
    # Down from 10 s to 950 s: repeats 0.1 and 0.2 and level 1 fell due unpolled.
    assert [p.key for p in esc.poll(inc, now=950.0)] == ["0.2", "1.0"]
    state = esc.state(inc.id)
    assert state is not None
    assert state.sent == {"0.0", "0.1", "0.2", "1.0"}  # the repeat folded into 0.2 is never sent later


def test_policy_channels_must_exist() -> None:
    with pytest.raises(ConfigError, match=r"levels\.1\.notify: unknown channel\(s\) pd-secondary, slack"):
        Escalator(POLICY, Notifier(MemoryOutbox(), [SlackChannel("pd-primary", "http://unused")]))
    with pytest.raises(InputError, match="channels"):
        Notifier(MemoryOutbox(), [SlackChannel("a", "http://unused")]).notify(
            Notification("k", "trigger", "s", "src", 0.0), ["b"]
        )


def test_priorities_by_name_or_number() -> None:
    named = parse_policy({"levels": [{"notify": ["a"]}], "priorities": ["P0", "p1", 2]})
    assert named.priorities == [Priority.P0, Priority.P1, Priority.P2]


def test_only_escalating_incidents_page() -> None:
    esc = Escalator(POLICY)
    assert esc.poll(incident(Priority.P2), now=0.0) == []
    assert [p.key for p in esc.poll(incident(Priority.P3, IncidentStatus.NEEDS_HUMAN), now=0.0)] == ["0.0"]
    resolved = dataclasses.replace(incident(), status=IncidentStatus.RESOLVED, resolved_at=5.0)
    assert Escalator(POLICY).poll(resolved, now=0.0) == []


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"levels": []}, "levels"),
        ({"levels": [{"notify": []}]}, "levels.0.notify"),
        ({"levels": [{"notify": ["a"], "after_s": -1}]}, "levels.0.after_s"),
        ({"levels": [{"notify": ["a"]}], "priorities": [7]}, "priorities.0"),
        ({"levels": [{"notify": ["a"]}], "priorities": ["P9"]}, "priorities.0"),
        ({"levels": [{"notify": ["a"], "pager": "x"}]}, "levels.0.pager"),
    ],
)
def test_bad_policy_names_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        parse_policy(data)


def test_an_ack_before_any_page_stops_every_later_page() -> None:
    outbox = MemoryOutbox()
    esc = _escalator(outbox)
    inc = incident()
    assert esc.acknowledge(inc, now=0.0, by="alice") == []  # nobody paged, nobody told
    assert esc.poll(inc, now=5000.0) == []
    assert outbox.pending() == []
