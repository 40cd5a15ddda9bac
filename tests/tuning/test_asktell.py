"""The ask/tell contract of every optimiser on a seeded toy objective."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from novacron.errors import InputError
from novacron.tuning import METHODS, Param, SearchSpace, TrialState, make_optimizer

SPACE = SearchSpace(
    (
        Param("x", "float", -2.0, 2.0),
        Param("y", "float", -2.0, 2.0),
        Param("n", "int", 0, 6),
        Param("c", "categorical", choices=("a", "b", "c")),
    )
)


def toy(p: dict[str, Any]) -> float:
    """A bowl with its minimum 0 at x=0.5, y=-0.5, n=4, c='b'."""
    return float((p["x"] - 0.5) ** 2 + (p["y"] + 0.5) ** 2 + 0.1 * (p["n"] - 4) ** 2 + (p["c"] != "b"))


def _run(method: str, seed: int, budget: int) -> list[float]:
    opt = make_optimizer(method, SPACE, seed=seed)
    values = []
    for _ in range(budget):
        trial = opt.ask()
        assert all(SPACE.params[i].contains(trial.params[n]) for i, n in enumerate(SPACE.names))
        values.append(toy(trial.params))
        opt.tell(trial.number, values[-1])
    return values


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_proposals(method: str) -> None:
    assert _run(method, 7, 14) == _run(method, 7, 14)


def test_gp_beats_random_on_the_toy_at_equal_budget() -> None:
    gp = [min(_run("gp", s, 20)) for s in range(3)]
    rnd = [min(_run("random", s, 20)) for s in range(3)]
    assert np.median(gp) < np.median(rnd)


@pytest.mark.parametrize("method", METHODS)
def test_failed_and_infeasible_trials_never_become_best(method: str) -> None:
    opt = make_optimizer(method, SPACE, seed=1)
    first, second, third = opt.ask(), opt.ask(), opt.ask()
    opt.fail(first.number, "twin run crashed")
    opt.tell(second.number, -100.0, feasible=False)
    opt.tell(third.number, 5.0)
    assert opt.trials[first.number].state is TrialState.FAILED
    best = opt.best()
    assert best is not None
    assert best.number == third.number
    nxt = opt.ask()  # the model keeps working with failures in its history
    opt.tell(nxt.number, 1.0)
    assert opt.finished == 4


def test_batch_asks_differ_and_telling_twice_is_refused() -> None:
    opt = make_optimizer("gp", SPACE, seed=2)
    for _ in range(8):
        t = opt.ask()
        opt.tell(t.number, toy(t.params))
    batch = [opt.ask() for _ in range(3)]
    points = {tuple(SPACE.encode(t.params)) for t in batch}
    assert len(points) == 3
    opt.tell(batch[0].number, 1.0)
    with pytest.raises(InputError, match="already told"):
        opt.tell(batch[0].number, 2.0)
    with pytest.raises(InputError, match="no trial 99"):
        opt.tell(99, 2.0)


@pytest.mark.parametrize("method", METHODS)
def test_replay_resumes_where_the_history_ends(method: str) -> None:
    opt = make_optimizer(method, SPACE, seed=4)
    for _ in range(12):
        t = opt.ask()
        opt.tell(t.number, toy(t.params))
    hanging = opt.ask()  # asked, never told: the process was killed mid-evaluation
    resumed = make_optimizer(method, SPACE, seed=4)
    pending = resumed.replay(opt.trials)
    assert [t.number for t in pending] == [hanging.number]
    assert pending[0].params == hanging.params
    resumed.tell(hanging.number, toy(hanging.params))
    after = resumed.ask()
    assert after.number == 13
    best, best_again = opt.best(), resumed.best()
    assert best is not None
    assert best_again is not None
    assert best.value is not None
    assert best_again.value is not None
    assert best_again.value <= best.value


def test_unknown_method_is_named() -> None:
    with pytest.raises(InputError, match="unknown method 'annealing'"):
        make_optimizer("annealing", SPACE)


@pytest.mark.parametrize("method", METHODS)
def test_a_rebuilt_optimiser_that_inherits_asks_what_the_running_one_would(method: str) -> None:
    # A shared study rebuilds its optimiser from the store before each batch.
    opt = make_optimizer(method, SPACE, seed=2)
    for _ in range(14):
        t = opt.ask()
        opt.tell(t.number, toy(t.params))
    rebuilt = make_optimizer(method, SPACE, seed=2)
    assert rebuilt.replay(opt.trials) == []
    rebuilt.inherit(opt)
    for _ in range(3):
        mine, theirs = opt.ask(), rebuilt.ask()
        assert mine.number == theirs.number
        assert mine.params == theirs.params
        opt.tell(mine.number, toy(mine.params))
        rebuilt.tell(theirs.number, toy(theirs.params))
