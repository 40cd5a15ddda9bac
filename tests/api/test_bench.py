"""`novacron bench api` end to end on a tiny load: the JSON shape, and every request answered 200."""

from __future__ import annotations

from novacron.benchmarks.api import run_api_bench


def test_the_api_benchmark_reports_intake_and_listing() -> None:
    result = run_api_bench(
        intake_requests=300, list_requests=100, connections=20, alerts=50, rate=200.0, rate_seconds=0.5, batch=5
    )
    for section in ("intake", "intake_paced", "intake_batched", "list_incidents"):
        assert result[section]["errors"] == 0, section
        assert result[section]["requests_per_s"] > 0
        assert result[section]["p99_ms"] >= result[section]["p50_ms"] > 0
    assert result["intake"]["requests"] == 300
    assert result["intake_batched"]["alerts_per_s"] == round(result["intake_batched"]["requests_per_s"] * 5, 1)
    assert result["config"]["connections"] == 20
