"""The benches' percentile summaries are always valid JSON."""

from __future__ import annotations

import json

from novacron.benchmarks._stats import percentiles


def test_no_values_give_null_not_nan() -> None:
    out = percentiles([], (50, 99))
    assert out == {"p50": None, "p99": None}
    assert json.loads(json.dumps(out, allow_nan=False)) == out


def test_values_are_scaled_and_rounded() -> None:
    assert percentiles([0.001, 0.002, 0.003], (50,), scale=1000) == {"p50": 2.0}
