"""The coordinator inside a real controller: routing, approval, dedup, storage, API, entry points."""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from novacron.agents._util import output, propose
from novacron.agents.base import AgentContext, AgentOutput, Finding
from novacron.agents.coordinator import Coordinator
from novacron.agents.metrics import AgentMetrics
from novacron.agents.registry import AgentRegistry, default_registry
from novacron.api import create_app
from novacron.demo.fleet import free_port_block
from novacron.errors import ConfigError
from novacron.model import ActionKind, Fault, FaultId, FaultKind, TargetId
from novacron.runtime.controller import Controller
from novacron.settings import AgentsSpec, FleetSpec
from novacron.store.tokens import Role, TokenStore
from novacron.testing import fleet, http_service_target

from ..integration.conftest import eventually, healthy


class Proposer:
    """An agent that proposes one action of a given kind on ``api`` and reports a finding."""

    interval_s = 3600.0

    def __init__(self, name: str, kind: ActionKind) -> None:
        self.name = name
        self.kind = kind
        self.runs = 0

    def run(self, context: AgentContext) -> AgentOutput:
        self.runs += 1
        finding = Finding("api", "slow", "api is slow", 0.7, {"p95_s": 2.0})
        p = propose(self.name, self.kind, "api", key=f"{self.kind}/{self.runs}", reason="test", rollback="inverse")
        return output(self.name, context, [finding], [p], "one proposal")


def _registry(*agents: Proposer) -> AgentRegistry:
    reg = AgentRegistry()
    for a in agents:
        reg.register(a.name, lambda a=a: a)  # type: ignore[misc]
    return reg


@pytest.fixture
async def ctl(tmp_path: Path) -> AsyncIterator[Controller]:
    port = free_port_block(4)
    spec = fleet(http_service_target("api", port), store_url=f"sqlite:///{tmp_path / 'n.db'}")
    c = Controller(spec, workdir=tmp_path, seed=1)
    await c.start()
    await healthy(c)
    yield c
    await asyncio.wait_for(c.stop(), timeout=15)


def _coordinator(c: Controller, reg: AgentRegistry) -> Coordinator:
    return Coordinator(
        c.spec,
        reg,
        store=c.store,
        clock=c.clock,
        executor=c.executor,
        metrics=AgentMetrics(c.metrics.registry),
        pids=c.actuator.pids,
    )


async def test_low_risk_goes_through_the_executor(ctl: Controller) -> None:
    coord = _coordinator(ctl, _registry(Proposer("fast", ActionKind.RESTART)))
    [out] = await coord.run_once()
    assert out.applied
    assert out.proposals[0].status == "verified"
    rec = ctl.store.action(out.proposals[0].action.id)
    assert rec.action.requested_by == "agent:fast"
    stored = ctl.store.agent_outputs(agent="fast")
    assert stored[0]["proposals"][0]["status"] == "verified"
    assert ctl.metrics.registry.get_sample_value("novacron_agent_runs_total", {"agent": "fast"}) == 1.0


async def test_higher_risk_waits_for_approval_then_runs(ctl: Controller) -> None:
    coord = _coordinator(ctl, _registry(Proposer("risky", ActionKind.REPLACE)))
    [out] = await coord.run_once()
    assert not out.applied
    assert out.proposals[0].status == "awaiting_approval"
    action_id = out.proposals[0].action.id
    await eventually(lambda: [a.id for a in ctl.approvals.pending()] == [action_id], what="approval request")
    ctl.approvals.decide(action_id, approve=True, who="ops")
    await eventually(
        lambda: ctl.store.agent_outputs(agent="risky")[0]["proposals"][0]["status"] == "verified",
        what="approved action verified",
    )
    assert ctl.store.agent_outputs(agent="risky")[0]["applied"]
    await coord.stop()


async def test_duplicates_across_agents_and_with_open_incidents(ctl: Controller) -> None:
    a, b = Proposer("first", ActionKind.SCALE_OUT), Proposer("second", ActionKind.SCALE_OUT)
    coord = _coordinator(ctl, _registry(a, b))
    ctl.flow.file_fault(_fault())
    await eventually(lambda: ctl.incidents.open_for("api") is not None, what="incident open")
    first, second = await coord.run_once()
    assert len(first.findings) == 1
    assert second.findings == ()  # the same finding from another agent is dropped
    assert first.findings[0].evidence["open_incident"] == ctl.incidents.open_for("api").id  # type: ignore[union-attr]
    assert [p.status for p in first.proposals] == ["deduplicated"]  # the healer owns a target with an incident


def _fault() -> Fault:
    return Fault(FaultId(uuid.uuid4().hex), TargetId("api"), FaultKind.ALERT, 0.0, 0.0, {"alert": "test"})


async def test_dry_run_records_without_acting(ctl: Controller) -> None:
    agent = Proposer("dry", ActionKind.RESTART)
    coord = Coordinator(ctl.spec, _registry(agent), store=ctl.store, clock=ctl.clock, executor=None)
    [out] = await coord.run_once()
    assert out.dry_run
    assert out.proposals[0].status == "dry_run"
    with pytest.raises(Exception, match="no action"):
        ctl.store.action(out.proposals[0].action.id)


async def test_get_agents_over_the_api(ctl: Controller) -> None:
    coord = Coordinator(ctl.spec, _registry(Proposer("dry", ActionKind.RESTART)), store=ctl.store, clock=ctl.clock)
    await coord.run_once()
    token = TokenStore(ctl.store).create("viewer-1", Role.VIEWER, now=time.time())[1]
    app = create_app(ctl)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        resp = await client.get("/agents?agent=dry", headers={"Authorization": f"Bearer {token}"})
        bad = await client.get("/agents?limit=0", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200
    [row] = resp.json()
    assert row["agent"] == "dry"
    assert row["proposals"][0]["kind"] == "restart"
    assert row["findings"][0]["evidence"] == {"p95_s": 2.0}
    assert bad.status_code == 422


async def test_agents_run_on_their_schedule_inside_the_controller(tmp_path: Path) -> None:
    port = free_port_block(4)
    base = fleet(http_service_target("api", port), store_url=f"sqlite:///{tmp_path / 'n.db'}")
    spec = FleetSpec.model_validate(
        {
            **base.model_dump(),
            "agents": AgentsSpec.model_validate(
                {"enabled": True, "agents": {"capacity": {"enabled": False}, "circuit": {"interval_s": 0.2}}}
            ).model_dump(),
        }
    )
    c = Controller(spec, workdir=tmp_path, seed=1)
    assert c.agents is not None
    await c.start()
    try:
        await healthy(c)

        def runs() -> float:
            return c.metrics.registry.get_sample_value("novacron_agent_runs_total", {"agent": "circuit"}) or 0.0

        await eventually(lambda: runs() >= 5, what="five circuit agent runs")
        # A quiet run that says what the last stored one said refreshes that row instead of adding
        # one (not a row per 0.2 s): no two stored rows in a row are the same quiet output.
        rows = list(reversed(c.store.agent_outputs(agent="circuit")))
        assert len(rows) < runs()
        quiet = [(r["summary"] if not r["findings"] and not r["proposals"] else None) for r in rows]
        assert all(a is None or a != b for a, b in itertools.pairwise(quiet)), quiet
        assert c.store.agent_outputs(agent="capacity") == []
    finally:
        await asyncio.wait_for(c.stop(), timeout=15)


def test_a_third_party_agent_registers_through_an_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist = tmp_path / "acme_agents-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-agents\nVersion: 1.0\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text("[novacron.agents]\nacme = acme_agent:AcmeAgent\n", encoding="utf-8")
    (tmp_path / "acme_agent.py").write_text(
        "from novacron.agents._util import output\n\n\n"
        "class AcmeAgent:\n    name = 'acme'\n    interval_s = 5.0\n\n"
        "    def run(self, context):\n        return output(self.name, context, [], [], 'acme ok')\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = default_registry()
    assert "acme" in reg.names()
    assert reg.create("acme").name == "acme"
    sys.modules.pop("acme_agent", None)


def test_an_unknown_agent_in_the_spec_is_named(tmp_path: Path) -> None:
    base = fleet(store_url=f"sqlite:///{tmp_path / 'n.db'}")
    spec = FleetSpec.model_validate({**base.model_dump(), "agents": {"enabled": True, "agents": {"oracle": {}}}})
    with pytest.raises(ConfigError, match=r"^agents\.agents\.oracle: no agent 'oracle'"):
        Controller(spec, workdir=tmp_path)
