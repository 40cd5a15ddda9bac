"""Time-to-exhaustion and leak detection, capacity forecasts, and component-failure prediction.

Pure computation (no I/O): callers pass arrays or points and get records back.

* :class:`ExhaustionTracker` / :class:`ExhaustionMonitor` — streaming leak test and
  time-to-exhaustion, emitting :class:`novacron.model.Prediction` records;
  :func:`assess_exhaustion` is the one-shot form.
* :func:`novacron.forecasting.capacity.plan_capacity` — 30/60/90-day style forecasts
  with intervals, saturation risk, capacity to add and its annual cost.
* :func:`novacron.forecasting.failure.evaluate_failure` — "fails within H hours" from
  SMART history, beside the SMART > 0 rule.

Heavy modules (statsmodels, scikit-learn) load only when their functions are used.
"""

from novacron.forecasting.errors import AlreadyExhaustedError
from novacron.forecasting.exhaustion import (
    ExhaustionAssessment,
    ExhaustionConfig,
    assess_exhaustion,
    time_to_exhaustion,
)
from novacron.forecasting.tracker import ExhaustionMonitor, ExhaustionTracker

__all__ = [
    "AlreadyExhaustedError",
    "ExhaustionAssessment",
    "ExhaustionConfig",
    "ExhaustionMonitor",
    "ExhaustionTracker",
    "assess_exhaustion",
    "time_to_exhaustion",
]
