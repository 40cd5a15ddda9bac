"""The streaming tracker the controller feeds: Predictions with evidence, restarts, gaps."""

from __future__ import annotations

import pytest

from novacron.errors import InputError
from novacron.forecasting import ExhaustionMonitor, ExhaustionTracker
from novacron.forecasting.synthetic import make_series
from novacron.model import Prediction


def _feed(tracker: ExhaustionTracker, kind: str, upto: int, seed: int = 3) -> float:
    s = make_series(kind, n=2000, seed=seed)
    for t, y in zip(s.t[:upto], s.y[:upto], strict=True):
        tracker.update(float(t), float(y))
    return float(s.t[upto - 1])


def test_leak_yields_a_prediction_record() -> None:
    tracker = ExhaustionTracker("rss_bytes", 100.0, target="api")
    now = _feed(tracker, "linear", 400)
    p = tracker.predict(now)
    assert isinstance(p, Prediction)
    assert p.target == "api"
    assert p.resource == "rss_bytes"
    assert p.made_at == now
    assert p.interval[0] <= p.eta_s <= p.interval[1]
    assert 0 < p.confidence <= 1
    for key in ("slope_per_s", "mann_kendall_p", "kendall_tau", "window_start", "window_end", "limit"):
        assert key in p.evidence
    assert p.evidence["slope_per_s"] > 0


def test_eta_counts_down_from_now() -> None:
    tracker = ExhaustionTracker("disk", 100.0)
    now = _feed(tracker, "linear", 400)
    first = tracker.predict(now)
    later = tracker.predict(now + 60.0)
    assert first is not None
    assert later is not None
    assert later.eta_s == pytest.approx(first.eta_s - 60.0)


@pytest.mark.parametrize("kind", ["flat", "sawtooth", "cleanup"])
def test_healthy_series_give_no_prediction(kind: str) -> None:
    tracker = ExhaustionTracker("heap", 100.0)
    now = _feed(tracker, kind, 1500)
    assert tracker.predict(now) is None
    verdict = tracker.assess()
    assert verdict is not None
    assert verdict.reason


def test_restart_forgets_the_old_trend() -> None:
    tracker = ExhaustionTracker("rss", 100.0)
    now = _feed(tracker, "linear", 400)
    assert tracker.predict(now) is not None
    tracker.restart()
    assert len(tracker) == 0
    assert tracker.predict(now) is None


def test_gap_restarts_history() -> None:
    tracker = ExhaustionTracker("rss", 100.0, max_gap_s=60.0)
    for i in range(30):
        tracker.update(float(i), 10.0 + i)
    tracker.update(1000.0, 12.0)
    assert len(tracker) == 1


def test_bad_points_are_rejected_with_the_resource_named() -> None:
    tracker = ExhaustionTracker("fds", 1024.0, target="db")
    tracker.update(10.0, 5.0)
    with pytest.raises(InputError, match="db/fds"):
        tracker.update(9.0, 6.0)
    with pytest.raises(InputError, match="negative"):
        tracker.update(11.0, -1.0)
    with pytest.raises(InputError, match="finite"):
        tracker.update(12.0, float("nan"))
    with pytest.raises(InputError, match="limit"):
        ExhaustionTracker("fds", 0.0)


def test_monitor_keeps_one_tracker_per_resource_and_sorts_by_eta() -> None:
    monitor = ExhaustionMonitor()
    fast = make_series("linear", n=500, seed=1)
    for t, y in zip(fast.t[:300], fast.y[:300], strict=True):
        monitor.observe("api", "rss", float(t), float(y), 100.0)
        monitor.observe("api", "disk", float(t), 10.0 + 0.1 * float(t) / 10, 1000.0)
        monitor.observe("db", "rss", float(t), 50.0, 100.0)
    preds = monitor.predictions(float(fast.t[299]))
    assert [(p.target, p.resource) for p in preds] == [("api", "rss"), ("api", "disk")]
    monitor.restart("api")
    assert monitor.predictions(float(fast.t[299])) == []
