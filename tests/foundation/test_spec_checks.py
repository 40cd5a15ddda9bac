"""Spec checks at `validate` time: what `run` would trip over is refused up front, naming the field."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from novacron.cli import main
from novacron.errors import ConfigError
from novacron.settings import load_spec


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


def _validate(spec: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """``novacron validate -c SPEC`` through the CLI's entry point, in this process."""
    monkeypatch.setattr(sys, "argv", ["novacron", "validate", "-c", str(spec)])
    with pytest.raises(SystemExit) as done:
        main()
    return int(done.value.code or 0), capsys.readouterr().err


def test_validate_exits_2_on_a_file_that_is_not_utf8(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "fleet.yaml"
    bad.write_bytes(b"targets:\n- {name: a, command: [\xff\xfe]}\n")
    code, err = _validate(bad, capsys, monkeypatch)
    assert code == 2
    assert "not UTF-8" in err
    assert "Traceback" not in err


def test_validate_refuses_a_detector_that_run_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "fleet.yaml"
    watch = "{metric: latency, detector: {detector: robust_zscore}}"
    spec.write_text(_targets(f"{{name: a, command: [x], metrics: {{watch: [{watch}]}}}}"))
    code, err = _validate(spec, capsys, monkeypatch)
    assert code == 2, err
    assert "targets[a].metrics.watch[0].detector" in err
    assert "robust_zscore" in err
