"""Search spaces and objectives: bounds, encoding, constraints."""

from __future__ import annotations

import numpy as np
import pytest

from novacron.errors import InputError
from novacron.tuning import Constraint, Objective, Param, SearchSpace


def _space() -> SearchSpace:
    return SearchSpace(
        (
            Param("interval", "log", 1.0, 60.0),
            Param("failures", "int", 1, 5),
            Param("timeout", "float", 0.5, 3.0),
            Param("ladder", "categorical", choices=(["restart", "replace"], ["replace", "restart"])),
        )
    )


def test_decode_encode_round_trip_snaps_integers_and_choices() -> None:
    space = _space()
    config = space.decode(np.array([0.5, 0.49, 0.2, 0.9]))
    assert config["failures"] == 3
    assert config["ladder"] == ["replace", "restart"]
    assert config["interval"] == pytest.approx(np.sqrt(60.0))
    assert space.decode(space.encode(config)) == config


def test_snap_is_what_decode_then_encode_gives() -> None:
    space = _space()
    points = np.random.default_rng(3).random((50, space.dims))
    snapped = space.snap(points)
    for p, s in zip(points, snapped, strict=True):
        assert np.allclose(space.encode(space.decode(p)), s)


def test_reversed_bounds_are_refused_naming_the_field() -> None:
    with pytest.raises(InputError, match=r"bounds reversed") as err:
        Param("policy.backoff.base_s", "float", 5.0, 1.0, where="tuning.params[0]")
    assert err.value.where == "tuning.params[0].bounds"


def test_log_needs_positive_low_and_names_are_unique() -> None:
    with pytest.raises(InputError, match="low > 0"):
        Param("x", "log", 0.0, 1.0)
    with pytest.raises(InputError, match="searched twice"):
        SearchSpace((Param("x", "float", 0, 1), Param("x", "int", 0, 3)))


def test_objective_weights_directions_and_hard_constraints() -> None:
    objective = Objective(
        weights={"mttr_p95_s": 1.0, "availability": 100.0},
        directions={"mttr_p95_s": "min", "availability": "max"},
        constraints=(Constraint("false_actions_per_day", "<=", 1.0), Constraint("availability", ">=", 0.99)),
    )
    good = objective.score({"mttr_p95_s": 30.0, "availability": 0.995, "false_actions_per_day": 0.5})
    assert good.feasible
    assert good.value == pytest.approx(30.0 - 99.5)
    bad = objective.score({"mttr_p95_s": 10.0, "availability": 0.98, "false_actions_per_day": 2.0})
    assert not bad.feasible
    assert bad.violated == ("false_actions_per_day <= 1", "availability >= 0.99")
    with pytest.raises(InputError, match="did not measure false_actions_per_day"):
        objective.score({"mttr_p95_s": 1.0, "availability": 1.0})
