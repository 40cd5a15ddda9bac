"""From a fleet spec's ``tuning:`` block to a search problem on the twin.

Parameter paths are spec paths — ``targets.<name>.checks.<i>.interval_s``, ``…failures``
and ``…timeout_s`` become the twin's probe interval, failure threshold and probe timeout —
or ``twin.<knob>`` for healer knobs the spec has no field for (``twin.max_restarts``,
``twin.memory_high``, ``twin.disk_high``, ``twin.detection_delay_s``): those are searched
and reported but never promoted. A path that does not exist in the spec, a spec field the
twin cannot model and an objective the twin cannot measure are refused here, naming the
field (``tuning.params[2].path``).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from novacron.errors import InputError
from novacron.settings import FleetSpec, parse_spec
from novacron.tuning import Constraint, Objective, Param, SearchSpace
from novacron.tuning.twin import KNOBS, METRICS, TwinScenario
from novacron.tuningspec import TuningSpec

__all__ = ["TuneProblem", "apply_values", "build_problem", "knob_of", "scenario_of"]

_CHECK_KNOBS = {"interval_s": "probe_interval_s", "failures": "failure_threshold", "timeout_s": "probe_timeout_s"}
_CHECK_PATH = re.compile(r"^targets\.([^.]+)\.checks\.(\d+)\.(\w+)$")
_TWIN_PATH = re.compile(r"^twin\.(\w+)$")
_SPEC_KNOBS = set(_CHECK_KNOBS.values())


@dataclass(frozen=True, slots=True)
class TuneProblem:
    """Everything a study needs: the space (named by path), the objective, the scenario."""

    spec: FleetSpec
    tuning: TuningSpec
    space: SearchSpace
    knobs: Mapping[str, str]  # parameter path → twin knob
    objective: Objective
    scenario: TwinScenario

    def knob_values(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """A candidate (path → value) as twin knobs (knob → value)."""
        return {self.knobs[path]: value for path, value in config.items()}

    def spec_paths(self) -> list[str]:
        """The searched paths that are spec fields (promotable)."""
        return [p for p in self.space.names if not p.startswith("twin.")]

    def describe(self) -> dict[str, Any]:
        """What a study stores as its configuration (a resumed study must match it)."""
        return {"spec": self.spec.name, "tuning": self.tuning.model_dump(mode="json")}


def _lookup(data: Any, parts: list[str]) -> Any:
    """Walk a spec dump by path parts; targets are addressed by name. KeyError when absent."""
    node = data
    for i, part in enumerate(parts):
        if i == 1 and parts[0] == "targets":
            node = next(t for t in node if t["name"] == part)
        elif isinstance(node, list):
            node = node[int(part)]
        elif isinstance(node, dict):
            node = node[part]
        else:
            raise KeyError(part)
    return node


def _exists(spec: FleetSpec, path: str) -> bool:
    try:
        _lookup(spec.model_dump(mode="json"), path.split("."))
    except (KeyError, IndexError, ValueError, StopIteration):
        return False
    return True


def knob_of(spec: FleetSpec, path: str, where: str) -> str:
    """The twin knob a parameter path drives, or an error naming ``where``."""
    twin = _TWIN_PATH.match(path)
    if twin is not None:
        knob = twin.group(1)
        if knob not in KNOBS or knob in _SPEC_KNOBS:
            spec_only = sorted(set(KNOBS) - _SPEC_KNOBS)
            raise InputError(f"the twin has no knob {knob!r} here (twin.<{'|'.join(spec_only)}>)", where=where)
        return knob
    if not _exists(spec, path):
        raise InputError(f"unknown parameter path {path!r}: no such field in the spec", where=where)
    check = _CHECK_PATH.match(path)
    if check is None or check.group(3) not in _CHECK_KNOBS:
        raise InputError(
            f"the twin cannot model {path!r}: search targets.<name>.checks.<i>.(interval_s|failures|timeout_s) "
            "or twin.<knob>",
            where=where,
        )
    return _CHECK_KNOBS[check.group(3)]


def scenario_of(block: TuningSpec) -> TwinScenario:
    """The twin scenario of a ``tuning:`` block (errors name ``tuning.scenario.…``)."""
    fields = block.scenario.model_dump()
    try:
        return TwinScenario(**{**fields, "kinds": tuple(fields["kinds"])}, seeds=tuple(block.seeds))
    except InputError as exc:
        raise InputError(exc.reason, where=f"tuning.{exc.where}") from exc


def build_problem(spec: FleetSpec, *, tuning: TuningSpec | None = None) -> TuneProblem:
    """Check the ``tuning:`` block against the spec and the twin, and build the problem."""
    block = tuning or spec.tuning
    if block is None:
        raise InputError("the spec has no tuning: block", where="tuning")
    if not block.params:
        raise InputError("name at least one parameter to search", where="tuning.params")
    scenario = scenario_of(block)
    params, knobs = [], {}
    for i, p in enumerate(block.params):
        where = f"tuning.params[{i}]"
        knob = knob_of(spec, p.path, f"{where}.path")
        if knob == "probe_interval_s" and p.bounds is not None and p.bounds[0] < scenario.dt_s:
            raise InputError(
                f"the twin probes at most once per step: low must be >= scenario.dt_s ({scenario.dt_s:g})",
                where=f"{where}.bounds",
            )
        low, high = p.bounds if p.bounds is not None else (0.0, 1.0)
        params.append(Param(p.path, p.type, low, high, tuple(p.choices or ()), where=where))
        knobs[p.path] = knob
    for name in block.objectives:
        if name not in METRICS:
            raise InputError(
                f"the twin cannot measure {name!r} (it measures {', '.join(METRICS)})",
                where=f"tuning.objectives.{name}",
            )
    constraints = []
    for i, (metric, op, bound) in enumerate(block.parsed_constraints()):
        if metric not in METRICS:
            raise InputError(f"the twin cannot measure {metric!r}", where=f"tuning.constraints[{i}]")
        constraints.append(Constraint(metric, op, bound))
    objective = Objective(dict(block.objectives), METRICS, tuple(constraints))
    return TuneProblem(spec, block, SearchSpace(tuple(params)), knobs, objective, scenario)


def apply_values(spec: FleetSpec, values: Mapping[str, Any]) -> FleetSpec:
    """A new spec with the promotable values set at their paths (``twin.*`` paths are skipped)."""
    data = copy.deepcopy(spec.model_dump(mode="json"))
    for path, value in values.items():
        if path.startswith("twin."):
            continue
        parts = path.split(".")
        parent = _lookup(data, parts[:-1])
        parent[parts[-1]] = value
    return parse_spec(data, source="tuned spec")
