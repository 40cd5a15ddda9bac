"""Spec checks at `validate` time: what `run` would trip over is refused up front, naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from novacron.errors import ConfigError
from novacron.settings import load_spec
from tests.cli.runner import cli


def _targets(*items: str) -> str:
    return "targets:\n" + "".join(f"- {i}\n" for i in items)


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        (
            _targets("{name: a, command: [x], port: 8000}", "{name: b, command: [x], port: 8000}"),
            "targets[1].port",
            "'a'",
        ),
        (
            _targets("{name: a, command: [x], port: 8000, replicas: 3}", "{name: b, command: [x], port: 8002}"),
            "targets[1].port",
            "port 8002",
        ),
        (_targets("{name: a, command: [x], port: 65535, replicas: 3}"), "targets[0].port", "65537"),
        (
            "controller: {api_port: 8001}\n" + _targets("{name: a, command: [x], port: 8000, replicas: 2}"),
            "controller.api_port",
            "'a'",
        ),
        ("controller: {api_port: 9000, metrics_port: 9000}\ntargets: []\n", "controller.metrics_port", "api_port"),
        ("policy: {backoff: {cap_s: .inf}}\ntargets: []\n", "policy.backoff.cap_s", "finite"),
        ("policy: {flap: {window_s: .nan}}\ntargets: []\n", "policy.flap.window_s", "finite"),
        (
            _targets("{name: a, command: [x], cleanup_paths: [/srv/a/scratch, /]}"),
            "targets[0].cleanup_paths[1]",
            "root",
        ),
        (_targets("{name: a, command: [x], cleanup_paths: [/tmp]}"), "targets[0].cleanup_paths[0]", "top-level"),
        (_targets("{name: a, command: [x], cleanup_paths: [/tmp/x/../..]}"), "targets[0].cleanup_paths[0]", "root"),
        ("a: " + "[" * 20_000 + "]" * 20_000 + "\n", "spec", "nested too deeply"),
    ],
)
def test_a_spec_run_would_trip_over_is_refused_naming_the_field(text: str, field: str, reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_spec(text)
    assert f"{field}:" in str(err.value)
    assert reason in str(err.value)


def test_distinct_ports_and_deep_cleanup_paths_stay_valid() -> None:
    spec = load_spec(
        _targets(
            "{name: a, command: [x], port: 8000, replicas: 2, cleanup_paths: [/var/lib/a/scratch]}",
            "{name: b, command: [x], port: 8002}",
        )
        + "controller: {api_port: 8003}\n"
    )
    assert [t.port for t in spec.targets] == [8000, 8002]


def test_validate_exits_2_on_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    bad = tmp_path / "fleet.yaml"
    bad.write_bytes(b"targets:\n- {name: a, command: [\xff\xfe]}\n")
    res = cli("validate", "-c", str(bad))
    assert res.returncode == 2
    assert "not UTF-8" in res.stderr
    assert "Traceback" not in res.stderr


def test_validate_refuses_a_detector_that_run_refuses(tmp_path: Path) -> None:
    spec = tmp_path / "fleet.yaml"
    watch = "{metric: latency, detector: {detector: robust_zscore}}"
    spec.write_text(_targets(f"{{name: a, command: [x], metrics: {{watch: [{watch}]}}}}"))
    res = cli("validate", "-c", str(spec))
    assert res.returncode == 2, res.stderr
    assert "targets[a].metrics.watch[0].detector" in res.stderr
    assert "robust_zscore" in res.stderr
