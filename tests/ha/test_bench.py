"""``novacron bench ha``: its bounds, and how it reads a controller's loop lag."""

from __future__ import annotations

from novacron.benchmarks.ha import _cpu_percent, _gc_pauses_over, _lag_p99, _p99_said, _share_within

from ..cli.runner import cli


def test_bench_ha_needs_two_controllers() -> None:
    res = cli("bench", "ha", "--controllers", "1", "--trials", "1")
    assert res.returncode == 2
    assert "--controllers" in res.stderr


def test_loop_lag_p99_is_the_bucket_that_holds_99_percent() -> None:
    text = "\n".join(
        [
            'novacron_loop_lag_seconds_bucket{le="0.005"} 90.0',
            'novacron_loop_lag_seconds_bucket{le="0.01"} 98.0',
            'novacron_loop_lag_seconds_bucket{le="0.025"} 99.5',
            'novacron_loop_lag_seconds_bucket{le="+Inf"} 100.0',
        ]
    )
    assert _lag_p99(text) == 25.0
    assert _lag_p99("") is None


def test_the_share_within_50_ms_and_a_p99_beyond_every_bound() -> None:
    window = [(0.025, 90.0), (0.05, 97.0), (1.0, 97.0), (float("inf"), 100.0)]
    assert _share_within(window, 0.05) == 0.97
    assert _p99_said(window) == "over 1000 ms"
    assert _p99_said([(0.05, 0.0), (float("inf"), 0.0)]) is None


def test_cpu_is_a_share_of_one_core_over_the_window() -> None:
    assert _cpu_percent({"s1": 10.0, "gone": 1.0}, {"s1": 13.0}, 10.0) == {"s1": 30.0}


def test_gc_pauses_over_50_ms_are_counted_across_generations() -> None:
    text = "\n".join(
        [
            'novacron_gc_pause_seconds_bucket{generation="0",le="0.05"} 40.0',
            'novacron_gc_pause_seconds_bucket{generation="0",le="+Inf"} 40.0',
            'novacron_gc_pause_seconds_bucket{generation="2",le="0.05"} 3.0',
            'novacron_gc_pause_seconds_bucket{generation="2",le="0.1"} 4.0',
            'novacron_gc_pause_seconds_bucket{generation="2",le="+Inf"} 5.0',
        ]
    )
    assert _gc_pauses_over(text, 0.05) == 2.0
    assert _gc_pauses_over("", 0.05) is None  # a controller that does not measure them
