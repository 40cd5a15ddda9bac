"""Fleet layouts as integer genomes, the seed's genome operators, and the twin fleet a layout builds.

Genes (:data:`GENES`, each an integer within its bounds): zones, hosts per zone,
replicas per service, placement spread (0: a service's replicas share a host; 1: they go
to distinct hosts, alternating zones), spare capacity (each step adds a quarter of the
base cores to every host) and connections (0: a ring; 1: a ring with chords; 2: a ring,
chords and two-hop links). Mutation applies one of the named operators — add node,
remove node, modify capacity, change connections, change replicas, change spread — and
crossover swaps genes between two layouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from novacron.errors import InputError
from novacron.extras import require
from novacron.twin import Topology

__all__ = ["GENES", "OPERATORS", "Layout", "layout_operators", "mutate"]

IntArray = npt.NDArray[np.int64]

# name → (low, high), inclusive
GENES: dict[str, tuple[int, int]] = {
    "zones": (1, 3),
    "hosts_per_zone": (1, 6),
    "replicas": (1, 4),
    "spread": (0, 1),
    "spare": (0, 4),
    "connections": (0, 2),
}
OPERATORS = ("add_node", "remove_node", "modify_capacity", "change_connections", "change_replicas", "change_spread")

_BASE_CORES = 16.0
_SERVICE_CORES = 6.0  # what one service needs in total, however many replicas share it
_SERVICE_MEM_GB = 24.0


@dataclass(frozen=True, slots=True)
class Layout:
    """One fleet layout (see the module docstring for the genes)."""

    zones: int = 1
    hosts_per_zone: int = 3
    replicas: int = 2
    spread: int = 1
    spare: int = 1
    connections: int = 1

    def __post_init__(self) -> None:
        for name, (lo, hi) in GENES.items():
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise InputError(f"must be within {lo}..{hi}, got {value}", where=f"layout.{name}")

    @classmethod
    def from_genes(cls, genes: npt.ArrayLike) -> Layout:
        """The layout of a genome row (rounded and clipped to the bounds)."""
        row = np.asarray(genes, dtype=np.float64).reshape(-1)
        if row.shape[0] != len(GENES):
            raise InputError(f"a genome has {len(GENES)} genes, got {row.shape[0]}", where="genes")
        values = {
            name: int(np.clip(round(float(v)), lo, hi)) for (name, (lo, hi)), v in zip(GENES.items(), row, strict=True)
        }
        return cls(**values)

    def genes(self) -> IntArray:
        """The genome row of this layout."""
        return np.array([getattr(self, n) for n in GENES], dtype=np.int64)

    def as_dict(self) -> dict[str, int]:
        """Gene name → value."""
        return {n: int(getattr(self, n)) for n in GENES}

    @property
    def hosts(self) -> int:
        """Hosts in the fleet."""
        return self.zones * self.hosts_per_zone

    @property
    def host_cores(self) -> float:
        """Cores of each host (base plus spare capacity)."""
        return _BASE_CORES * (1.0 + 0.25 * self.spare)

    def host_order(self) -> list[int]:
        """Hosts interleaved across zones (host ``z·hpz + i`` is host ``i`` of zone ``z``)."""
        return [z * self.hosts_per_zone + i for i in range(self.hosts_per_zone) for z in range(self.zones)]

    def placement(self, services: int) -> list[list[int]]:
        """The host of every replica of every service."""
        order, n = self.host_order(), self.hosts
        out = []
        for s in range(services):
            if self.spread:
                out.append([order[(s * self.replicas + j) % n] for j in range(self.replicas)])
            else:
                out.append([order[s % n]] * self.replicas)
        return out

    def links(self) -> tuple[list[int], list[int]]:
        """Host-to-host links: a ring, plus chords and two-hop links as connections grow."""
        n = self.hosts
        if n == 1:
            return [], []
        if n == 2:
            return [0], [1]
        pairs = {(min(i, (i + 1) % n), max(i, (i + 1) % n)) for i in range(n)}
        if self.connections >= 1 and n >= 4:
            pairs |= {(i, i + n // 2) for i in range(n // 2)}
        if self.connections >= 2 and n >= 5:
            pairs |= {(min(i, (i + 2) % n), max(i, (i + 2) % n)) for i in range(n)}
        ordered = sorted(pairs)
        return [a for a, _ in ordered], [b for _, b in ordered]

    def topology(self, services: int) -> tuple[Topology, list[list[int]]]:
        """The twin fleet of this layout, and each service's VM indices."""
        place = self.placement(services)
        vm_host = [h for hosts in place for h in hosts]
        n_vms = len(vm_host)
        cpu = _SERVICE_CORES / self.replicas
        mem = _SERVICE_MEM_GB / self.replicas
        hosts = {
            "cores": np.full(self.hosts, self.host_cores), "mem_gb": np.full(self.hosts, 512.0),
            "iops": np.full(self.hosts, 100_000.0), "disk_gb": np.full(self.hosts, 4000.0),
            "net_gbps": np.full(self.hosts, 25.0),
        }  # fmt: skip
        vms = {
            "host": np.array(vm_host), "group": np.array([s % 8 for s, hs in enumerate(place) for _ in hs]),
            "cpu": np.full(n_vms, cpu), "mem_gb": np.full(n_vms, mem), "mem_limit_gb": np.full(n_vms, mem * 1.5),
            "iops": np.full(n_vms, 2000.0 / self.replicas), "net_gbps": np.full(n_vms, 0.2 / self.replicas),
        }  # fmt: skip
        src, dst = self.links()
        topo = Topology.create(
            hosts, vms, {"src": np.array(src, dtype=np.int64), "dst": np.array(dst, dtype=np.int64),
                         "gbps": np.full(len(src), 10.0)}, n_groups=8,
        )  # fmt: skip
        groups, start = [], 0
        for hs in place:
            groups.append(list(range(start, start + len(hs))))
            start += len(hs)
        return topo, groups


def mutate(genes: npt.ArrayLike, operator: str, rng: np.random.Generator) -> IntArray:
    """Apply one named genome operator to a genome row; the result stays within the bounds."""
    row = np.asarray(genes, dtype=np.float64).round().astype(np.int64).copy()
    names = list(GENES)
    step = int(rng.choice([-1, 1]))
    edits = {
        "add_node": ("hosts_per_zone", 1),
        "remove_node": ("hosts_per_zone", -1),
        "modify_capacity": ("spare", step),
        "change_connections": ("connections", step),
        "change_replicas": ("replicas", step),
    }
    if operator == "change_spread":
        i = names.index("spread")
        row[i] = 1 - row[i]
    elif operator in edits:
        gene, delta = edits[operator]
        i = names.index(gene)
        row[i] += delta
        if operator in ("add_node", "remove_node") and rng.random() < 0.3:
            z = names.index("zones")  # sometimes a node arrives or leaves as a whole zone
            row[z] += delta
    else:
        raise InputError(f"unknown operator {operator!r} (one of {', '.join(OPERATORS)})", where="operator")
    lo = np.array([b[0] for b in GENES.values()])
    hi = np.array([b[1] for b in GENES.values()])
    clipped: IntArray = np.clip(row, lo, hi)
    return clipped


def layout_operators(mutation_rate: float = 0.9) -> dict[str, Any]:
    """pymoo sampling, crossover and mutation for layout genomes (the seed's operators)."""
    mutation_mod = require("pymoo.core.mutation", feature="layout search")
    sampling_mod = require("pymoo.operators.sampling.rnd", feature="layout search")
    crossover_mod = require("pymoo.operators.crossover.ux", feature="layout search")

    class LayoutMutation(mutation_mod.Mutation):  # type: ignore[misc, name-defined]
        """One named genome operator per offspring, chosen at random."""

        def _do(self, problem: Any, x: Any, *args: Any, random_state: Any = None, **kwargs: Any) -> Any:
            rng = random_state if random_state is not None else np.random.default_rng()
            out = np.asarray(x, dtype=np.float64).copy()
            for k in range(out.shape[0]):
                if rng.random() < mutation_rate:
                    out[k] = mutate(out[k], OPERATORS[int(rng.integers(len(OPERATORS)))], rng)
            return out

    return {
        "sampling": sampling_mod.IntegerRandomSampling(),
        "crossover": crossover_mod.UniformCrossover(),
        "mutation": LayoutMutation(),
    }


def gene_bounds() -> tuple[IntArray, IntArray]:
    """Lower and upper bounds of every gene."""
    return (
        np.array([b[0] for b in GENES.values()], dtype=np.int64),
        np.array([b[1] for b in GENES.values()], dtype=np.int64),
    )
