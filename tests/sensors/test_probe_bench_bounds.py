"""`novacron bench probes` runs at every size its CLI accepts (over 1,000 targets too) and names a bad bound."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from novacron.cli import app


def test_more_targets_than_one_port_block_runs_and_prints_json() -> None:
    argv = ["bench", "probes", "--targets", "1200", "--interval-ms", "1000", "--duration", "1", "--json"]
    out = CliRunner().invoke(app, argv)
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    assert result["targets"] == 1200
    assert result["probes_per_s"] > 0


def test_the_stated_bounds_are_enforced_with_exit_2() -> None:
    for flag, value in (("--targets", "5001"), ("--targets", "0"), ("--interval-ms", "10")):
        out = CliRunner().invoke(app, ["bench", "probes", flag, value, "--json"])
        assert out.exit_code == 2, (flag, value, out.output)
        assert flag in out.output
