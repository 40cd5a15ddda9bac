"""``novacron bench ha``: its bounds, and how it reads a controller's loop lag."""

from __future__ import annotations

from novacron.benchmarks.ha import _lag_p99

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
