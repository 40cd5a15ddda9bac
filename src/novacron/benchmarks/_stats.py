"""Percentile summaries shared by the benchmarks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["percentiles"]


def percentiles(
    values: Sequence[float], qs: Sequence[int] = (50, 95, 99), *, scale: float = 1.0
) -> dict[str, float | None]:
    """``{"p50": …, "p95": …, "p99": …}`` of ``values`` times ``scale``, rounded; None each without values.

    None, not NaN: a bench prints JSON, and NaN is not JSON.
    """
    if not values:
        return {f"p{q}": None for q in qs}
    arr = np.asarray(values, dtype=float) * scale
    return {f"p{q}": round(float(np.percentile(arr, q)), 2) for q in qs}
