"""Seeded chaos: the controller SIGKILLed at random instants around service crashes, through `novacron run`."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from novacron.cli import app

INVARIANTS = (
    "faults_without_incident",
    "faults_restarted_twice",
    "ports_with_two_processes",
    "duplicate_keys",
    "duplicate_incidents",
    "orphans_after_stop",
    "not_healthy_after_restart",
)


def test_controller_killed_around_crashes_loses_nothing_and_doubles_nothing() -> None:
    # Few trials, so the suite stays fast; `novacron bench chaos --trials 200` is the long run.
    argv = ["bench", "chaos", "--trials", "3", "--services", "2", "--window-ms", "40", "--seed", "18", "--json"]
    out = CliRunner().invoke(app, argv)
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    assert result["trials"] == 3
    for invariant in INVARIANTS:
        assert result[invariant] == 0, f"{invariant}: {result}"
    assert {"p50", "p95"} <= result["healthy_after_restart_s"].keys()


def test_bench_chaos_names_a_bad_bound() -> None:
    out = CliRunner().invoke(app, ["bench", "chaos", "--trials", "0", "--json"])
    assert out.exit_code == 2
    assert "--trials" in out.output
