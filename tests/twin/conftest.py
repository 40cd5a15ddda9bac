"""Small fleets for twin tests."""

from __future__ import annotations

import pytest

from novacron.twin import HealerParams, Simulator, Topology, build_fleet, with_healer


@pytest.fixture
def topo() -> Topology:
    """Eight hosts, forty VMs."""
    return build_fleet(8, 40, seed=1, n_groups=4)


@pytest.fixture
def quiet(topo: Topology) -> Simulator:
    """A simulator without the built-in healer."""
    return Simulator(topo, healer=HealerParams(enabled=False), seed=1)


@pytest.fixture
def healed(topo: Topology) -> Simulator:
    """A simulator with the built-in healer probing every second."""
    return with_healer(Simulator(topo, healer=HealerParams(probe_interval_s=1.0), seed=1))
