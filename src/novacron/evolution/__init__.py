"""Evolutionary architecture search: fleet layouts as genomes, Pareto fronts (pure computation).

:class:`ParetoSearch` runs NSGA-II (NSGA-III beyond three objectives) from pymoo with
ask/tell; :class:`Layout` is the genome of a fleet (zones, hosts, replicas, spread, spare
capacity, connections) with the seed's operators (:func:`mutate`, :func:`layout_operators`);
:func:`run_layout` measures a layout on the twin; :func:`hypervolume` scores a front and
:func:`pick_weighted` chooses one point of it by weights.
"""

from __future__ import annotations

from novacron.evolution.layout import GENES, OPERATORS, Layout, gene_bounds, layout_operators, mutate
from novacron.evolution.pareto import Front, ParetoSearch, hypervolume
from novacron.evolution.pick import pick_weighted
from novacron.evolution.twin import LAYOUT_OBJECTIVES, layout_objectives, run_layout

__all__ = [
    "GENES",
    "LAYOUT_OBJECTIVES",
    "OPERATORS",
    "Front",
    "Layout",
    "ParetoSearch",
    "gene_bounds",
    "hypervolume",
    "layout_objectives",
    "layout_operators",
    "mutate",
    "pick_weighted",
    "run_layout",
]
