"""Detect → heal → verify on real processes, with every safety rail."""

from __future__ import annotations

import itertools
import signal
import sys
from pathlib import Path

from novacron.model import ActionKind, ActionStatus, FaultKind, IncidentStatus, Priority
from novacron.runtime.controller import Controller
from novacron.settings import FlapPolicy, spec_to_yaml
from novacron.store import Store
from novacron.testing import fleet, http_service_target

from .conftest import Factory, eventually, healthy, incidents_of, kill, resolved


def _events(c: Controller, incident_id: str) -> list[str]:
    return [e.kind for e in c.store.timeline(incident_id)]


async def test_a_crash_is_healed_and_verified(controller: Factory, ports: int) -> None:
    c = await controller(fleet(http_service_target("api", ports)))
    await healthy(c)
    old = kill(c, "api")
    await eventually(resolved(c, "api"), what="crash incident resolved")
    inc = incidents_of(c, "api")[0]
    assert inc.kind is FaultKind.CRASH
    assert c.actuator.pids("api")
    assert c.actuator.pids("api")[0] != old
    assert _events(c, inc.id)[:3] == ["detected", "priority", "diagnosed"]
    assert {"action_started", "action_finished", "verified", "resolved"} <= set(_events(c, inc.id))
    assert inc.mttr_s is not None
    assert inc.mttd_s <= inc.mttr_s


async def test_a_hang_is_detected_by_probes_and_healed(controller: Factory, ports: int) -> None:
    c = await controller(fleet(http_service_target("api", ports)))
    await healthy(c)
    kill(c, "api", signal.SIGSTOP)
    await eventually(resolved(c, "api"), what="hang incident resolved")
    inc = incidents_of(c, "api")[0]
    assert inc.kind is FaultKind.HANG
    actions = c.store.actions(incident_id=inc.id)
    assert [a.action.kind for a in actions] == [ActionKind.RESTART]


async def test_repeated_signals_are_one_incident(controller: Factory, ports: int) -> None:
    c = await controller(fleet(http_service_target("api", ports), ladder=["escalate"]))
    await healthy(c)
    kill(c, "api", signal.SIGSTOP)
    await eventually(lambda: bool(incidents_of(c, "api")), what="incident")
    await eventually(lambda: incidents_of(c, "api")[0].status is IncidentStatus.NEEDS_HUMAN, what="escalation")
    kill(c, "api", signal.SIGKILL)  # a second signal on the same episode
    await eventually(lambda: incidents_of(c, "api")[0].fault_count == 2, what="deduplicated signal")
    assert len(incidents_of(c, "api")) == 1


async def test_a_command_that_cannot_start_backs_off_and_escalates(
    controller: Factory, ports: int, tmp_path: Path
) -> None:
    # The program exists (so the start-up check passes) but its interpreter does not: exec fails.
    program = tmp_path / "service"
    program.write_text("#!/nonexistent/interpreter\n")
    program.chmod(0o755)
    broken = http_service_target("broken", ports, command=[str(program)])
    c = await controller(fleet(broken, backoff={"base_s": 0.2, "cap_s": 1.0, "jitter": 0.0}))
    await eventually(lambda: bool(incidents_of(c, "broken")), what="start failure")
    inc = incidents_of(c, "broken")[0]
    await eventually(lambda: c.store.incident(inc.id).status is IncidentStatus.NEEDS_HUMAN, what="escalated to a human")
    assert inc.kind is FaultKind.START_FAILED
    actions = sorted(c.store.actions(incident_id=inc.id), key=lambda r: r.created_at)
    assert [a.action.kind for a in actions] == [ActionKind.RESTART, ActionKind.REPLACE]
    assert all(a.status is ActionStatus.FAILED for a in actions)
    gap = actions[1].started_at - actions[0].started_at  # type: ignore[operator]
    assert gap >= 0.2, "the second attempt must wait out the backoff"
    assert c.store.incident(inc.id).priority <= Priority.P1


async def test_a_start_that_exits_at_once_is_escalated(controller: Factory, ports: int) -> None:
    failing = http_service_target("failing", ports, command=[sys.executable, "-c", "raise SystemExit(3)"])
    c = await controller(fleet(failing, backoff={"base_s": 0.05, "cap_s": 5.0}))
    await eventually(
        lambda: any(i.status is IncidentStatus.NEEDS_HUMAN for i in incidents_of(c, "failing")),
        what="escalation",
    )
    inc = incidents_of(c, "failing")[0]
    assert len(c.store.actions(incident_id=inc.id)) == 2  # restart, replace: no tight loop


async def test_a_flapping_target_is_quarantined(controller: Factory, ports: int) -> None:
    spec = fleet(http_service_target("api", ports), flap=FlapPolicy(window_s=60, threshold=3, quarantine_s=60))
    c = await controller(spec)
    for n in (1, 2):
        await healthy(c)
        kill(c, "api")
        await eventually(resolved(c, "api", n), what=f"incident {n} healed")
    await healthy(c)
    kill(c, "api")
    await eventually(lambda: len(incidents_of(c, "api")) == 3, what="third incident")
    third = incidents_of(c, "api")[2]
    await eventually(lambda: c.store.incident(third.id).status is IncidentStatus.NEEDS_HUMAN, what="quarantine")
    assert c.store.actions(incident_id=third.id) == []
    assert any("flapping" in e.detail for e in c.store.timeline(third.id))
    assert c.gate.is_quarantined("api")


async def test_more_failures_than_the_blast_radius_wait_their_turn(controller: Factory, ports: int) -> None:
    names = ["a", "b", "c", "d"]
    targets = [http_service_target(n, ports + i) for i, n in enumerate(names)]
    c = await controller(fleet(*targets, blast_radius=0.25))
    await healthy(c)
    for n in names[:3]:
        kill(c, n, signal.SIGSTOP)
    for n in names[:3]:
        await eventually(resolved(c, n), timeout=20, what=f"{n} healed")
    windows = sorted(
        (r.started_at, r.finished_at) for r in c.store.actions(limit=100) if r.started_at and r.finished_at
    )
    for (_, end), (start, _) in itertools.pairwise(windows):
        assert start >= end, "with a cap of one, remediations must not overlap"
    incs = [i for n in names[:3] for i in incidents_of(c, n)]
    assert any(i.priority is Priority.P0 for i in incs), "exceeding the cap escalates a P0"


async def test_dry_run_decides_records_and_touches_nothing(controller: Factory, ports: int) -> None:
    c = await controller(fleet(http_service_target("api", ports), dry_run=True))
    await healthy(c)
    kill(c, "api")
    await eventually(lambda: bool(incidents_of(c, "api")), what="incident")
    inc = incidents_of(c, "api")[0]
    await eventually(lambda: bool(c.store.actions(incident_id=inc.id)), what="dry-run record")
    [rec] = c.store.actions(incident_id=inc.id)
    assert rec.status is ActionStatus.DRY_RUN
    assert c.actuator.pids("api") == ()
    assert c.store.incident(inc.id).is_open


async def test_the_kill_switch_stops_automation_and_a_human_can_still_heal(controller: Factory, ports: int) -> None:
    c = await controller(fleet(http_service_target("api", ports)))
    await healthy(c)
    c.set_autonomous(False, who="alice")
    kill(c, "api")
    await eventually(
        lambda: bool(incidents_of(c, "api")) and incidents_of(c, "api")[0].status is IncidentStatus.NEEDS_HUMAN,
        what="escalation under the kill switch",
    )
    assert c.actuator.pids("api") == ()
    result = await c.heal("api", ActionKind.START, who="alice")
    assert result.verified
    assert incidents_of(c, "api")[0].status is IncidentStatus.RESOLVED
    assert any(e.actor == "alice" and e.verb == "autonomous.disable" for e in c.store.audit_log())


async def test_approval_gates_a_risky_remediation(controller: Factory, ports: int) -> None:
    c = await controller(fleet(http_service_target("api", ports), approval_required=["low", "medium"]))
    await healthy(c)
    kill(c, "api")
    await eventually(lambda: bool(c.approvals.pending()), what="approval request")
    assert c.actuator.pids("api") == ()
    c.approvals.decide(c.approvals.pending()[0].id, approve=True, who="bob")
    await eventually(resolved(c, "api"), what="healed after approval")


async def test_a_config_rollback_runs_the_previous_version_and_can_be_undone(
    controller: Factory, ports: int, tmp_path: Path
) -> None:
    old = fleet(http_service_target("api", ports, env={"VERSION": "1"}))
    new = fleet(http_service_target("api", ports, env={"VERSION": "2"}))
    seed = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    seed.save_config(spec_to_yaml(old), source="v1", now=1.0)
    seed.close()
    c = await controller(new)
    await healthy(c)
    result = await c.rollback(who="carol", target="api")
    assert result.verified
    assert c.actuator.spec_of("api").env == {"VERSION": "1"}
    undo = await c.rollback(who="carol", action_id=result.action.id)
    assert undo.status is ActionStatus.VERIFIED
    assert c.actuator.spec_of("api").env == {"VERSION": "2"}


async def test_after_escalation_a_fixed_start_recovers_on_the_next_retry(
    controller: Factory, ports: int, tmp_path: Path
) -> None:
    broken = tmp_path / "api.broken"
    command = [sys.executable, "-m", "novacron.demo.service", "--name", "api", "--port", str(ports)]
    target = http_service_target("api", ports, command=[*command, "--fail-start-file", str(broken)])
    c = await controller(fleet(target, backoff={"base_s": 0.05, "cap_s": 1.0, "jitter": 0.0}))
    await healthy(c)
    broken.write_text("bad config")
    kill(c, "api")
    await eventually(
        lambda: bool(incidents_of(c, "api")) and incidents_of(c, "api")[0].status is IncidentStatus.NEEDS_HUMAN,
        what="escalation",
    )
    assert c.actuator.pids("api") == ()
    broken.unlink()  # the human fixes the config
    await eventually(resolved(c, "api"), what="recovery on a retry")
    inc = incidents_of(c, "api")[0]
    retries = [a for a in c.store.actions(incident_id=inc.id) if "/retry/" in a.action.idempotency_key]
    assert retries
    assert retries[0].status is ActionStatus.VERIFIED
