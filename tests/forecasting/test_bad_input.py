"""Bad histories get clear errors, never crashes or absurd ETAs (hypothesis properties)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novacron.errors import InputError, NotEnoughDataError
from novacron.forecasting import assess_exhaustion

values = st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=2, max_size=80)


@given(values, st.floats(min_value=1e-3, max_value=1e7))
@settings(max_examples=60, deadline=None)
def test_any_valid_history_gives_a_sane_verdict(ys: list[float], limit: float) -> None:
    t = np.arange(len(ys), dtype=float)
    verdict = assess_exhaustion(t, np.asarray(ys), limit)
    assert verdict.reason
    if verdict.leak:
        assert 0.0 <= verdict.eta_s <= 365 * 86_400
        assert verdict.interval[0] <= verdict.eta_s <= verdict.interval[1]
        assert not math.isnan(verdict.confidence)


@given(values, st.integers(min_value=0, max_value=79), st.floats(min_value=-1e12, max_value=-1e-9))
@settings(max_examples=40, deadline=None)
def test_negative_values_name_the_point(ys: list[float], where: int, bad: float) -> None:
    arr = np.asarray(ys)
    i = where % arr.size
    arr[i] = bad
    with pytest.raises(InputError, match=f"point {i}: impossible negative"):
        assess_exhaustion(np.arange(arr.size, dtype=float), arr, 10.0)


@given(st.lists(st.floats(min_value=0, max_value=10), max_size=1))
def test_too_short_history_says_how_many_points(ys: list[float]) -> None:
    with pytest.raises(NotEnoughDataError, match="need 2 points"):
        assess_exhaustion(np.arange(len(ys), dtype=float), np.asarray(ys, dtype=float), 10.0)


@given(st.floats(allow_nan=False, max_value=0))
def test_non_positive_limit_is_rejected(limit: float) -> None:
    with pytest.raises(InputError, match="limit"):
        assess_exhaustion(np.arange(5, dtype=float), np.ones(5), limit)


def test_time_going_back_is_rejected() -> None:
    with pytest.raises(InputError, match="point 2: time does not increase"):
        assess_exhaustion(np.array([0.0, 1.0, 1.0]), np.ones(3), 10.0)
