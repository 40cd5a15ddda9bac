"""Capacity planning: forecasts with honest bands, risk that rises with the horizon, what to
add and what it costs; bad histories get clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novacron.errors import InputError, NotEnoughDataError
from novacron.forecasting import AlreadyExhaustedError
from novacron.forecasting.backtest import backtest_capacity
from novacron.forecasting.capacity import CostModel, plan_capacity

STEP = 3600.0
PER_DAY = 24

pytestmark = pytest.mark.usefixtures("no_lstm")


def _growing(days: int, growth_per_day: float = 1.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.arange(days * PER_DAY)
    daily = 5.0 * np.sin(2 * np.pi * x / PER_DAY)
    return 50.0 + growth_per_day * x / PER_DAY + daily + rng.normal(0, 1.0, x.size)


def test_plan_scales_horizons_to_history_and_says_so() -> None:
    plan = plan_capacity(_growing(12), interval_s=STEP, capacity=100.0, horizons_days=(30, 60, 90))
    assert plan.horizon_scale == pytest.approx(6 / 90)
    assert [h.days for h in plan.horizons] == pytest.approx([2.0, 4.0, 6.0])
    assert [h.requested_days for h in plan.horizons] == [30, 60, 90]
    assert "scaled" in plan.note
    assert plan.season == 24
    assert plan.step_s == STEP


def test_growth_risk_and_capacity_to_add() -> None:
    cost = CostModel(cost_per_unit_year=12.0)
    plan = plan_capacity(_growing(12), interval_s=STEP, capacity=65.0, horizons_days=(1, 3, 6), cost=cost)
    assert plan.growth_per_day == pytest.approx(1.0, rel=0.2)
    risks = [h.saturation_risk for h in plan.horizons]
    assert risks == sorted(risks)
    assert risks[-1] > 0.5
    last = plan.horizons[-1]
    assert last.low <= last.mean <= last.high
    assert last.mean == pytest.approx(68.0, abs=8)
    assert last.capacity_to_add == pytest.approx(last.peak_high - 65.0)
    assert last.annual_cost == pytest.approx(12.0 * last.capacity_to_add)


def test_flat_usage_far_below_capacity_needs_nothing() -> None:
    plan = plan_capacity(_growing(6, growth_per_day=0.0), interval_s=STEP, capacity=500.0, horizons_days=(2,))
    assert plan.horizons[0].saturation_risk < 0.01
    assert plan.horizons[0].capacity_to_add == 0.0
    assert plan.note == "horizons as requested"


def test_backtest_beats_seasonal_naive_on_a_seasonal_trend() -> None:
    result = backtest_capacity(_growing(8, growth_per_day=2.0), interval_s=STEP)
    assert result.relative_mae < 1.0
    assert 0.0 <= result.coverage_80 <= 1.0


def test_already_exhausted() -> None:
    with pytest.raises(AlreadyExhaustedError, match="already exhausted"):
        plan_capacity(_growing(5), interval_s=STEP, capacity=40.0)


def test_short_history_says_how_many_points() -> None:
    with pytest.raises(NotEnoughDataError, match="need 24 points"):
        plan_capacity(np.arange(10.0), interval_s=STEP, capacity=1000.0)


def test_gappy_history_is_refused() -> None:
    y = _growing(5)
    y[::3] = np.nan
    with pytest.raises(InputError, match="gappy history"):
        plan_capacity(y, interval_s=STEP, capacity=1000.0)


def test_small_gaps_are_filled() -> None:
    y = _growing(5)
    y[30:33] = np.nan
    plan = plan_capacity(y, interval_s=STEP, capacity=1000.0, horizons_days=(1,))
    assert np.isfinite(plan.median).all()


@given(st.floats(min_value=0, max_value=1e6))
@settings(max_examples=20, deadline=None)
def test_constant_series_is_refused(value: float) -> None:
    with pytest.raises(InputError, match="constant series"):
        plan_capacity(np.full(30, value), interval_s=STEP, capacity=2e6)


@given(st.integers(min_value=0, max_value=29), st.floats(min_value=-1e9, max_value=-1e-6))
@settings(max_examples=20, deadline=None)
def test_negative_values_are_refused(where: int, bad: float) -> None:
    y = np.linspace(1.0, 2.0, 30)
    y[where] = bad
    with pytest.raises(InputError, match=f"negative value .* at point {where}"):
        plan_capacity(y, interval_s=STEP, capacity=10.0)


@given(st.one_of(st.floats(max_value=0), st.just(float("nan")), st.just(float("inf"))))
@settings(max_examples=20, deadline=None)
def test_bad_capacity_is_refused(capacity: float) -> None:
    with pytest.raises(InputError, match="capacity"):
        plan_capacity(_growing(3), interval_s=STEP, capacity=capacity)
