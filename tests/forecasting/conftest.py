"""Shared builders for the forecasting tests."""

from __future__ import annotations

import numpy as np
import pytest

from novacron.forecasting import lstm
from novacron.forecasting.failure import DriveDays


def make_fleet(drives: int = 500, days: int = 40, failing: int = 60, seed: int = 0) -> DriveDays:
    """A fleet whose failing drives show a climbing SMART 5 count in their last 4 days."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[int, int, float, int]] = []
    fail_days = dict(
        zip(rng.choice(drives, failing, replace=False).tolist(), rng.integers(10, days, failing).tolist(), strict=True)
    )
    noisy = rng.random(drives) < 0.2  # healthy drives with a stable non-zero counter
    for d in range(drives):
        last = fail_days.get(d, days - 1)
        base = float(rng.integers(1, 50)) if noisy[d] else 0.0
        for day in range(last + 1):
            value = base
            if d in fail_days and last - day <= 3:
                value += 20.0 * (4 - (last - day)) ** 2
            rows.append((day, d, value, int(d in fail_days and day == last)))
    arr = np.array(rows, dtype=np.float64)
    n = arr.shape[0]
    return DriveDays(
        day=arr[:, 0].astype(np.int64),
        drive=arr[:, 1].astype(np.int64),
        model=np.zeros(n, dtype=np.int64),
        capacity=np.full(n, 3e12),
        failure=arr[:, 3].astype(np.int64),
        smart=np.column_stack([arr[:, 2], np.full(n, np.nan), rng.normal(30, 2, n)]),
        smart_ids=(5, 187, 194),
    )


@pytest.fixture
def no_lstm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plan without the optional LSTM (as without torch), which also keeps tests quick."""
    monkeypatch.setattr(lstm, "available", lambda: False)
