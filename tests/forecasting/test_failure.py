"""Failure prediction: labels look ahead exactly H hours, splits never leak, and on a fleet
where failing drives' counters climb the model beats the "any counter > 0" rule."""

from __future__ import annotations

import numpy as np
import pytest

from novacron.errors import InputError, NotEnoughDataError
from novacron.forecasting.failure import DriveDays, evaluate_failure, features, label_within

from .conftest import make_fleet


def test_labels_cover_the_horizon_before_each_failure() -> None:
    dd = DriveDays(
        day=np.arange(10, dtype=np.int64),
        drive=np.zeros(10, dtype=np.int64),
        model=np.zeros(10, dtype=np.int64),
        capacity=np.ones(10),
        failure=np.array([0] * 9 + [1], dtype=np.int64),
        smart=np.zeros((10, 1)),
        smart_ids=(5,),
    )
    assert label_within(dd, 72).tolist() == [0] * 6 + [1] * 4
    assert label_within(dd, 24).tolist() == [0] * 8 + [1] * 2


def test_features_include_counter_changes_and_skip_unreported_counters() -> None:
    x, names = features(make_fleet(drives=20, failing=2))
    assert "smart_5_delta_1d" in names
    assert "smart_5_delta_7d" in names
    assert not any(n.startswith("smart_187") for n in names)
    assert x.shape[1] == len(names)


@pytest.mark.parametrize("split", ["time", "drive"])
def test_model_beats_the_baseline_rule(split: str) -> None:
    report = evaluate_failure(make_fleet(), split=split)
    assert report.test_failures > 0
    assert report.model.auc_pr > report.baseline.auc_pr
    assert report.model.precision > report.baseline.precision
    assert 0.0 <= report.model.recall <= 1.0
    assert report.baseline.recall == pytest.approx(1.0)


def test_too_few_failures_is_a_clear_error() -> None:
    with pytest.raises(NotEnoughDataError, match="not enough failures"):
        evaluate_failure(make_fleet(drives=50, failing=1))


def test_unknown_split_is_rejected() -> None:
    with pytest.raises(InputError, match="split"):
        evaluate_failure(make_fleet(drives=100, failing=20), split="random")


def test_mismatched_columns_are_rejected() -> None:
    with pytest.raises(InputError, match="failure"):
        DriveDays(
            day=np.arange(3, dtype=np.int64),
            drive=np.zeros(3, dtype=np.int64),
            model=np.zeros(3, dtype=np.int64),
            capacity=np.ones(3),
            failure=np.zeros(2, dtype=np.int64),
            smart=np.zeros((3, 1)),
            smart_ids=(5,),
        )
