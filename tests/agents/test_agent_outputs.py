"""Every built-in agent returns the one AgentOutput record, with evidence and rollback plans."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from novacron.agents.base import Agent, AgentOutput
from novacron.agents.bugfix import BugFixAgent
from novacron.agents.capacity import CapacityAgent
from novacron.agents.circuit import CircuitAgent, CircuitState
from novacron.agents.exhaustion import ExhaustionAgent, Reading, psutil_readings
from novacron.agents.registry import default_registry
from novacron.agents.scaling import ScalingAgent, ScalingEvent, ScalingPolicy, judge_events, propose_policy
from novacron.clock import FakeClock
from novacron.healing.catalog import new_action
from novacron.model import ActionKind, ActionStatus, Observation, TargetId
from novacron.store import ActionRecord

from .contexts import context, spec_of


def _check(out: AgentOutput, agent: Agent) -> None:
    assert isinstance(out, AgentOutput)
    assert out.agent == agent.name
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.applied = True  # type: ignore[misc]
    for p in out.proposals:
        assert p.rollback
        assert p.action.requested_by == f"agent:{agent.name}"
    for f in out.findings:
        assert 0.0 <= f.confidence <= 1.0


def test_every_registered_agent_is_an_agent() -> None:
    reg = default_registry()
    assert {"exhaustion", "capacity", "scaling", "circuit", "bugfix"} <= set(reg.names())
    for name in reg.names():
        assert isinstance(reg.create(name), Agent)


def test_exhaustion_restarts_a_leaking_replica_before_its_limit() -> None:
    clock = FakeClock()
    level = [100.0]

    def leaking(pid: int, paths: list[str]) -> dict[str, Reading]:
        level[0] += 10.0
        return {"memory": Reading(level[0], 2000.0), "threads": Reading(8.0, 4096.0)}

    agent = ExhaustionAgent(lead_time_s=900, sampler=leaking)
    spec = spec_of("api")
    out = None
    for _ in range(200):
        out = agent.run(context(spec, clock, pids={"api": [4242]}))
        if out.proposals:
            break
        clock.advance(10)
    assert out is not None
    _check(out, agent)
    assert out.proposals, "a steady leak was not acted on"
    action = out.proposals[0].action
    assert action.kind is ActionKind.RESTART
    assert action.params["replica"] == 0
    leak = next(f for f in out.findings if f.kind == "leak:memory")
    assert 0 < float(leak.evidence["eta_s"]) <= 900
    assert leak.evidence["lead_time_s"] == 900
    assert level[0] < 2000.0  # acted before the limit


def test_psutil_readings_of_a_real_process(tmp_path: Path) -> None:
    r = psutil_readings(os.getpid(), [str(tmp_path)])
    assert {"memory", "open_files", "threads", "connections", f"disk:{tmp_path}"} <= set(r)
    assert all(0 <= x.value <= x.limit for x in r.values())


def test_capacity_plans_and_proposes_a_scale_out() -> None:
    clock = FakeClock()
    # Ten days growing 12 points a day to 179 of 200: the capacity is met within the lead time
    # (scaled to 3.3 days by the short history) whichever forecasters are installed.
    obs = [
        Observation(TargetId("api"), "metrics", clock.now() + i * 7200.0, metrics={"cpu_percent": 60.0 + i * 1.0})
        for i in range(120)
    ]
    agent = CapacityAgent(lead_time_days=60)
    out = agent.run(context(spec_of("api", replicas=2, max_replicas=6), clock, observations={"api": obs}))
    _check(out, agent)
    finding = next(f for f in out.findings if f.kind == "saturation_risk")
    assert set(finding.evidence["horizons"]) == {"30d", "60d", "90d"}
    assert out.proposals
    assert out.proposals[0].action.kind is ActionKind.SCALE_OUT


def test_circuit_opens_within_two_probe_intervals_and_recovers() -> None:
    clock = FakeClock()
    agent = CircuitAgent()
    spec = spec_of("db")
    t0 = clock.now()
    for i in range(10):
        agent.feed("db", Observation(TargetId("db"), "probe:http", t0 + i, healthy=True, latency_s=0.01))
    states = [agent.feed("db", Observation(TargetId("db"), "probe:http", t0 + 10 + i, healthy=False)) for i in range(2)]
    assert states[-1] is CircuitState.FAILED
    out = agent.run(context(spec, clock))
    _check(out, agent)
    assert [p.action.kind for p in out.proposals] == [ActionKind.OPEN_CIRCUIT]
    assert any(f.kind == "circuit_failed" for f in out.findings)
    for i in range(3):
        agent.feed("db", Observation(TargetId("db"), "probe:http", t0 + 20 + i, healthy=True))
    assert agent.breakers["db"].state is CircuitState.HEALTHY
    assert agent.breakers["db"].recovery_estimate_s() == pytest.approx(11.0)
    out = agent.run(context(spec, clock))
    assert [p.action.kind for p in out.proposals] == [ActionKind.CLOSE_CIRCUIT]


def test_circuit_cascading_risk_over_dependencies() -> None:
    clock = FakeClock()
    spec = spec_of("db")
    spec = spec.model_copy(
        update={"targets": [*spec.targets, spec.targets[0].model_copy(update={"name": "web", "depends_on": ["db"]})]}
    )
    agent = CircuitAgent()
    for i in range(2):
        agent.feed("db", Observation(TargetId("db"), "probe:http", clock.now() + i, healthy=False))
    assert agent.cascade_risk(context(spec, clock))["web"] == 1.0


def _record(kind: ActionKind, t: float) -> ActionRecord:
    a = new_action(kind, TargetId("api"), key=f"k{t}")
    return ActionRecord(a, ActionStatus.VERIFIED, t, t, t + 1, "")


def test_scaling_judges_flaps_and_proposes_a_calmer_policy() -> None:
    clock = FakeClock()
    t0 = clock.now()
    actions = [_record(ActionKind.SCALE_OUT if i % 2 == 0 else ActionKind.SCALE_IN, t0 + i * 90.0) for i in range(6)]
    actions.append(_record(ActionKind.SCALE_OUT, t0 + 5000))
    loads = [Observation(TargetId("api"), "metrics", t0 + s, metrics={"load": 0.6}) for s in range(0, 6000, 10)]
    agent = ScalingAgent()
    out = agent.run(context(spec_of("api"), clock, observations={"api": loads}, actions=actions))
    _check(out, agent)
    finding = out.findings[0]
    verdicts = [v["verdict"] for v in finding.evidence["verdicts"]]
    assert verdicts.count("flapping") == 5
    assert verdicts[-1] == "needed"
    proposed = finding.evidence["proposed_policy"]
    assert proposed["cooldown_s"] > ScalingPolicy().cooldown_s
    assert proposed["scale_in_below"] < ScalingPolicy().scale_in_below


def test_no_policy_change_without_flaps() -> None:
    events = [ScalingEvent("api", 0.0, True), ScalingEvent("api", 5000.0, True)]
    assert propose_policy(judge_events(events, {}, "load", ScalingPolicy()), ScalingPolicy()) is None


def test_bugfix_agent_ignores_targets_without_a_repair_block() -> None:
    agent = BugFixAgent()
    crash = 'Traceback (most recent call last):\n  File "a.py", line 1, in f\n    x\nKeyError: 1\n'
    out = agent.run(context(spec_of("api"), FakeClock(), logs={"api": crash}))
    _check(out, agent)
    assert out.findings == ()
