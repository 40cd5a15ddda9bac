"""NSGA-II with ask/tell, layout genomes and their operators, layouts on the twin."""

from __future__ import annotations

import numpy as np
import pytest

from novacron.errors import InputError
from novacron.evolution import (
    GENES,
    OPERATORS,
    Layout,
    ParetoSearch,
    gene_bounds,
    hypervolume,
    layout_objectives,
    layout_operators,
    mutate,
    pick_weighted,
    run_layout,
)
from novacron.tuning.twin import TwinScenario


def _zdt1(x: np.ndarray) -> np.ndarray:
    f1 = x[:, 0]
    g = 1.0 + 9.0 * x[:, 1:].mean(axis=1)
    return np.column_stack([f1, g * (1.0 - np.sqrt(f1 / g))])


def test_nsga2_ask_tell_approaches_the_zdt1_front() -> None:
    search = ParetoSearch(xl=np.zeros(10), xu=np.ones(10), n_obj=2, pop_size=40, seed=3)
    hv = []
    for _ in range(40):
        x = search.ask()
        search.tell(_zdt1(x))
        hv.append(hypervolume(search.front().f, [1.0, 1.0]))
    assert search.method == "nsga2"
    assert hv[-1] > 0.6 * (2.0 / 3.0)
    assert hv[-1] >= hv[0]


def test_failed_genomes_never_reach_the_front() -> None:
    search = ParetoSearch(xl=np.zeros(3), xu=np.ones(3), n_obj=2, pop_size=8, seed=0)
    x = search.ask()
    f = _zdt1(x)
    failed = np.zeros(len(x), dtype=bool)
    failed[0] = True
    f[0] = [-1.0, -1.0]  # would dominate everything if it were believed
    search.tell(f, failed)
    front = search.front()
    assert not (front.f < 0).any()
    with pytest.raises(InputError, match="nothing was asked"):
        search.tell(f)


def test_bad_search_setup_is_named() -> None:
    with pytest.raises(InputError, match="at least 2 objectives"):
        ParetoSearch(xl=[0.0], xu=[1.0], n_obj=1, pop_size=8)
    with pytest.raises(InputError, match="low < high"):
        ParetoSearch(xl=[1.0], xu=[0.0], n_obj=2, pop_size=8)


def test_every_operator_keeps_genomes_within_bounds() -> None:
    rng = np.random.default_rng(0)
    lo, hi = gene_bounds()
    for op in OPERATORS:
        for genes in (lo, hi, Layout().genes()):
            out = mutate(genes, op, rng)
            assert ((out >= lo) & (out <= hi)).all(), op
    grown = mutate(Layout(hosts_per_zone=2).genes(), "add_node", np.random.default_rng(5))
    assert Layout.from_genes(grown).hosts > 2
    with pytest.raises(InputError, match="unknown operator"):
        mutate(lo, "teleport", rng)


def test_layout_builds_a_spread_fleet_and_pymoo_operators_load() -> None:
    layout = Layout(zones=2, hosts_per_zone=2, replicas=2, spread=1)
    topo, groups = layout.topology(services=3)
    assert topo.n_hosts == 4
    assert topo.n_vms == 6
    for vms in groups:
        assert len({int(topo.vm_host[v]) for v in vms}) == 2  # replicas on distinct hosts
    packed, _ = Layout(zones=2, hosts_per_zone=2, replicas=2, spread=0).topology(services=3)
    assert packed.vm_host[0] == packed.vm_host[1]
    assert set(layout_operators()) == {"sampling", "crossover", "mutation"}
    with pytest.raises(InputError, match=r"within 1\.\.4"):
        Layout(replicas=9)
    assert len(GENES) == len(layout.genes())


def test_layout_runs_are_deterministic_and_redundancy_buys_availability() -> None:
    scenario = TwinScenario(window_s=300.0, tail_s=120.0, fault_rate_per_hour=60.0, seeds=(0,))
    lean = Layout(zones=1, hosts_per_zone=2, replicas=1, spread=0, spare=0)
    sturdy = Layout(zones=2, hosts_per_zone=3, replicas=3, spread=1, spare=2)
    a = layout_objectives([run_layout(lean, scenario, 0)])
    assert a == layout_objectives([run_layout(lean, scenario, 0)])
    b = layout_objectives([run_layout(sturdy, scenario, 0)])
    assert b["cost_per_hour"] > a["cost_per_hour"]
    assert b["unavailability"] < a["unavailability"]


def test_pick_weighted_chooses_from_the_front() -> None:
    front = np.array([[1.0, 10.0], [5.0, 5.0], [10.0, 1.0]])
    assert pick_weighted(front, [1.0, 0.0]) == 0
    assert pick_weighted(front, [0.0, 1.0]) == 2
    with pytest.raises(InputError, match="weights"):
        pick_weighted(front, [1.0])
