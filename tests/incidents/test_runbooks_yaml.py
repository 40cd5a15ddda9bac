"""YAML runbooks: load-time validation names the step; compiled generators follow on_failure."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from novacron.errors import ConfigError, InputError
from novacron.incidents.runbooks import (
    PythonRunbook,
    RunbookContext,
    RunbookRegistry,
    dry_run,
    load_runbooks,
    parse_runbooks,
    runbook_json_schema,
)
from novacron.model import (
    Action,
    ActionKind,
    FaultKind,
    Incident,
    IncidentId,
    IncidentStatus,
    Outcome,
    Priority,
    TargetId,
)

WEB = """
name: web-recover
description: restart, then replace, then escalate
match: {kinds: [crash, hang], labels: {tier: "web*"}}
steps:
  - name: restart
    action: restart
    params: {grace_s: 5, note: "incident {incident} on {target}"}
    timeout_s: 20
    check: {expect: {healthy: true}}
    on_failure: next
    goto: end
  - name: replace
    action: replace
    on_failure: escalate
"""

SCALE = """
name: scale-and-clean
steps:
  - {name: scale, action: scale_out, params: {count: 2}, check: {at_least: {replicas: 3}}}
  - {name: clean, action: cleanup, target: "cache-1"}
  - {name: flip, action: config_rollback, on_failure: rollback, rollback: {action: restart}}
"""


def incident(kind: FaultKind = FaultKind.CRASH, target: str = "web-1") -> Incident:
    return Incident(
        id=IncidentId("inc-7"),
        target=TargetId(target),
        kind=kind,
        status=IncidentStatus.OPEN,
        priority=Priority.P2,
        opened_at=100.0,
        since=95.0,
    )


def ctx(kind: FaultKind = FaultKind.CRASH) -> RunbookContext:
    return RunbookContext(incident(kind), {"tier": "web-frontend"})


def outcome(action: Action, ok: bool = True, took: float = 1.0, **data: object) -> Outcome:
    return Outcome(action.id, ok=ok, started_at=0.0, finished_at=took, detail="" if ok else "boom", data=data)


def drive(book_text: str, replies: Sequence[dict[str, object]]) -> tuple[list[Action], object]:
    """Drive a runbook like the executor does, answering with ``replies`` in order."""
    (book,) = parse_runbooks(book_text)
    gen = book.start(ctx())
    actions = [next(gen)]
    try:
        for reply in replies:
            actions.append(gen.send(outcome(actions[-1], **reply)))  # type: ignore[arg-type]
    except StopIteration as stop:
        return actions, stop.value
    raise AssertionError(f"runbook still running after {len(replies)} replies: {actions[-1]}")


def test_success_path_stops_at_goto_end() -> None:
    actions, result = drive(WEB, [{"healthy": True}])
    assert [a.kind for a in actions] == [ActionKind.RESTART]
    a = actions[0]
    assert a.target == "web-1"
    assert a.incident_id == "inc-7"
    assert a.params["grace_s"] == 5
    assert a.params["note"] == "incident inc-7 on web-1"
    assert a.params["timeout_s"] == 20
    assert a.params["check"] == {"expect": {"healthy": True}}
    # Keyed like a ladder step (journaled before it acts); the id follows from the key.
    assert a.idempotency_key == "inc-7/runbook/web-recover/1/restart"
    assert a.id == drive(WEB, [{"healthy": True}])[0][0].id
    assert a.id.startswith("act-")
    assert len(a.id) == 16
    assert result.status == "succeeded"  # type: ignore[attr-defined]


def test_check_failure_falls_through_to_next_then_escalates() -> None:
    actions, result = drive(WEB, [{"healthy": False}, {"ok": False}, {}])
    assert [a.kind for a in actions] == [ActionKind.RESTART, ActionKind.REPLACE, ActionKind.ESCALATE]
    assert result.status == "escalated"  # type: ignore[attr-defined]
    assert result.failed == ("restart", "replace")  # type: ignore[attr-defined]
    assert "replace" in actions[-1].params["reason"]


def test_timeout_counts_as_failure() -> None:
    actions, _ = drive(WEB, [{"healthy": True, "took": 25.0}, {}])
    assert [a.kind for a in actions] == [ActionKind.RESTART, ActionKind.REPLACE]


def test_rollback_undoes_succeeded_steps_newest_first() -> None:
    actions, result = drive(SCALE, [{"replicas": 3}, {}, {"ok": False}, {}])
    kinds = [a.kind for a in actions]
    assert kinds == [ActionKind.SCALE_OUT, ActionKind.CLEANUP, ActionKind.CONFIG_ROLLBACK, ActionKind.SCALE_IN]
    undo = actions[-1]
    assert undo.inverse_of == actions[0].id
    assert undo.params["count"] == 2
    assert "check" not in undo.params
    assert actions[1].target == "cache-1"
    assert result.status == "rolled_back"  # type: ignore[attr-defined]
    _, failed_undo = drive(SCALE, [{"replicas": 3}, {}, {"ok": False}, {"ok": False}])
    assert "rollback failed for scale" in failed_undo.detail  # type: ignore[attr-defined]


def test_ids_are_deterministic_per_incident() -> None:
    first, _ = drive(WEB, [{"healthy": False}, {}])
    again, _ = drive(WEB, [{"healthy": False}, {}])
    assert [a.id for a in first] == [a.id for a in again]
    assert len({a.id for a in first}) == len(first)


def test_dry_run_assumes_success_or_replays_outcomes() -> None:
    (book,) = parse_runbooks(SCALE)
    plan = dry_run(book, ctx())
    assert [a.kind for a in plan.actions] == [ActionKind.SCALE_OUT, ActionKind.CLEANUP, ActionKind.CONFIG_ROLLBACK]
    assert plan.steps[0].outcome.data == {"replicas": 3.0}
    assert plan.result.status == "succeeded"
    failing = dry_run(book, ctx(), [True, True, False])
    assert failing.actions[-1].kind is ActionKind.SCALE_IN
    assert failing.result.status == "rolled_back"


def test_matching_by_kind_and_label_pattern() -> None:
    reg = RunbookRegistry(parse_runbooks(WEB + "\n---\n" + SCALE))
    inc = incident(FaultKind.CRASH)
    assert [b.name for b in reg.matching(inc, {"tier": "web-frontend"})] == ["web-recover", "scale-and-clean"]
    assert [b.name for b in reg.matching(inc, {"tier": "db"})] == ["scale-and-clean"]
    assert [b.name for b in reg.matching(incident(FaultKind.ALERT), {"tier": "web"})] == ["scale-and-clean"]


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (
            "{name: r, steps: [{name: ok, action: restart}, {name: boom, action: reboot_universe}]}",
            ["step 'boom'", "action", "reboot_universe"],
        ),
        (
            "{name: r, steps: [{name: a, action: restart, goto: b}, {name: b, action: stop, goto: a}]}",
            ["step 'a'", "cycle", "a -> b -> a"],
        ),
        (
            "{name: r, steps: [{name: a, action: restart, on_failure: next}, {name: b, action: stop, goto: a}]}",
            ["cycle"],
        ),
        ("{name: r, steps: [{name: a, action: restart, goto: nowhere}]}", ["step 'a'", "unknown step 'nowhere'"]),
        ("{name: r, steps: [{name: a, action: restart}, {name: a, action: stop}]}", ["duplicate step name"]),
        ("{name: r, steps: [{name: a, action: restart, timeout_s: -1}]}", ["step 'a': timeout_s"]),
        ("{name: r, steps: [{name: a, action: restart, params: {check: 1}}]}", ["step 'a': params", "reserved"]),
        ("{name: r, steps: [{name: a, action: restart, on_failure: retry}]}", ["step 'a': on_failure"]),
        ("{name: r, steps: []}", ["steps"]),
        ("{name: r, match: {kinds: [meteor]}, steps: [{name: a, action: restart}]}", ["match.kinds.0"]),
        ("[1, 2]", ["must be a mapping"]),
        ("name: [unclosed", ["not valid YAML"]),
        ("", ["no runbook"]),
        ("{name: r, steps: [{name: end, action: restart}]}", ["reserved"]),
    ],
)
def test_bad_runbooks_are_refused_naming_the_step(text: str, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_runbooks(text, source="rb.yaml")
    msg = str(exc.value)
    assert msg.startswith("rb.yaml")
    for fragment in fragments:
        assert fragment in msg


def test_directory_loading_is_all_or_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(WEB)
    (tmp_path / "b.yml").write_text(SCALE)
    (tmp_path / "notes.txt").write_text("ignored")
    reg = RunbookRegistry()
    assert [b.name for b in load_runbooks(tmp_path, reg)] == ["web-recover", "scale-and-clean"]
    (tmp_path / "c.yaml").write_text("{name: web-recover, steps: [{name: a, action: restart}]}")
    with pytest.raises(ConfigError, match="duplicate runbook name 'web-recover'"):
        load_runbooks(tmp_path)
    with pytest.raises(ConfigError, match="already registered"):
        load_runbooks(tmp_path / "b.yml", reg)
    assert len(reg) == 2


def test_json_schema_describes_steps() -> None:
    schema = runbook_json_schema()
    assert schema["title"] == "NovaCron runbook"
    assert set(schema["required"]) == {"name", "steps"}
    assert "restart" in schema["$defs"]["ActionKind"]["enum"]
    assert schema["$defs"]["StepSpec"]["properties"]["on_failure"]["enum"] == ["rollback", "next", "escalate"]


def test_dry_run_refuses_an_endless_python_runbook() -> None:
    def forever(c: RunbookContext):  # type: ignore[no-untyped-def]
        while True:
            yield c.action(ActionKind.RESTART, step="again")

    with pytest.raises(InputError, match="more than 50 actions"):
        dry_run(PythonRunbook("forever", forever), ctx(), max_steps=50)


_value = st.one_of(st.none(), st.integers(), st.text(max_size=8), st.lists(st.integers(), max_size=2))
_step = st.dictionaries(
    st.sampled_from(["name", "action", "params", "goto", "on_failure", "timeout_s", "check", "target", "x"]),
    _value,
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["name", "steps", "match", "description"]), st.one_of(_value, st.lists(_step, max_size=3))
    )
)
def test_arbitrary_documents_load_or_fail_with_config_error(doc: dict[str, object]) -> None:
    try:
        books = parse_runbooks(yaml.safe_dump(doc))
    except ConfigError as exc:
        message = str(exc)
    else:
        message = ""
    if message:
        return
    for book in books:  # anything that loads must run to completion
        assert dry_run(book, ctx()).result.status == "succeeded"
