"""Traffic actions on a real HAProxy in front of real replicas, through the controller's executor."""

from __future__ import annotations

from pathlib import Path

import pytest

from novacron.demo.fleet import free_port_block
from novacron.model import ActionKind, ActionStatus
from tests.integration.conftest import Factory
from tests.traffic.support import fronted_fleet, load

pytestmark = pytest.mark.slow


async def test_reroute_moves_traffic_and_its_rollback_restores_it(controller: Factory, tmp_path: Path) -> None:
    port, listen = free_port_block(3), free_port_block(1)
    c = await controller(fronted_fleet(port, listen))
    assert c.traffic is not None
    assert await c.wait_idle(10)
    url = f"http://127.0.0.1:{listen}/"
    assert (await load(url, requests=40))[200] == 40
    served: list[str] = []
    c.traffic.listeners.append(lambda _t, server, _s, _l: served.append(server))
    result = await c.heal(
        "web", ActionKind.REROUTE, who="op", params={"weights": {"r0": 0}, "from_weights": {"r0": 100}}
    )
    assert result.status is ActionStatus.VERIFIED, result.detail
    assert (await c.traffic.servers("web"))["r0"]["weight"] == 0
    assert (await load(url, requests=40))[200] == 40
    assert set(served) == {"r1"}
    undo = await c.rollback(who="op", action_id=result.action.id)
    assert undo.status is ActionStatus.VERIFIED
    assert (await c.traffic.servers("web"))["r0"]["weight"] == 100


async def test_drain_and_circuit_actions_change_server_state_with_zero_errors(controller: Factory) -> None:
    port, listen = free_port_block(3), free_port_block(1)
    c = await controller(fronted_fleet(port, listen))
    assert c.traffic is not None
    assert await c.wait_idle(10)
    drained = await c.heal("web", ActionKind.DRAIN, who="op", params={"server": "r1"})
    assert drained.status is ActionStatus.VERIFIED, drained.detail
    assert (await c.traffic.servers("web"))["r1"]["drain"]
    back = await c.heal("web", ActionKind.UNDRAIN, who="op", params={"server": "r1"})
    assert back.status is ActionStatus.VERIFIED
    # a circuit that would leave no server is refused, and HAProxy is left as it was
    opened = await c.heal("web", ActionKind.OPEN_CIRCUIT, who="op", params={"replica": 0})
    assert opened.status is ActionStatus.VERIFIED
    refused = await c.heal("web", ActionKind.OPEN_CIRCUIT, who="op", params={"replica": 1})
    assert refused.status is ActionStatus.FAILED
    assert "no server" in refused.detail
    state = await c.traffic.servers("web")
    assert state["r0"]["maint"]
    assert not state["r1"]["maint"]
    codes = await load(f"http://127.0.0.1:{listen}/", requests=50)
    assert codes == {200: 50}


async def test_bad_traffic_parameters_are_refused_and_change_nothing(controller: Factory) -> None:
    port, listen = free_port_block(3), free_port_block(1)
    c = await controller(fronted_fleet(port, listen))
    assert c.traffic is not None
    before = await c.traffic.servers("web")
    for params in ({"weights": {"r9": 5}}, {"weights": {"r0": 999}}, {"weights": {"r0": 0, "r1": 0}}, {}):
        res = await c.heal("web", ActionKind.REROUTE, who="op", params=params)
        assert res.status is ActionStatus.FAILED, params
    assert await c.traffic.servers("web") == before
