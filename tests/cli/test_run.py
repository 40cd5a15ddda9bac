"""``novacron run`` as a daemon: start and stop lines, log formats, ports claimed before any target starts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from .runner import NOVACRON, cli, controller


def _spec_with_marker(tmp_path: Path) -> tuple[Path, Path]:
    """A spec whose one target leaves a file behind when it starts."""
    marker = tmp_path / "started"
    spec = {
        "controller": {"store_url": f"sqlite:///{tmp_path / 'n.db'}", "workdir": str(tmp_path / "work")},
        "targets": [{"name": "t", "command": ["sh", "-c", f"touch {marker}; sleep 30"]}],
    }
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path, marker


@pytest.mark.parametrize("flag", ["--metrics-port", "--api-port"])
def test_a_taken_port_exits_2_naming_it_and_its_holder_before_any_target_starts(tmp_path: Path, flag: str) -> None:
    spec, marker = _spec_with_marker(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = cli("run", "-c", str(spec), flag, str(port))
    assert res.returncode == 2, res.stderr
    assert f"{flag}: port {port} on 127.0.0.1 is taken by pid {os.getpid()}" in res.stderr
    assert "Traceback" not in res.stderr
    assert not marker.exists(), "no target starts while a port is taken"
    assert not (tmp_path / "n.db").exists(), "not even the store is opened"


@pytest.mark.parametrize(
    ("flag", "host", "port_flag"),
    [
        ("--api-host", "999.1.1.1", None),  # not an address at all
        ("--metrics-host", "192.0.2.7", "--metrics-port"),  # TEST-NET-1: an address this machine does not have
    ],
)
def test_an_address_that_cannot_be_listened_on_names_the_host_flag(
    tmp_path: Path, flag: str, host: str, port_flag: str | None
) -> None:
    spec, marker = _spec_with_marker(tmp_path)
    res = cli("run", "-c", str(spec), flag, host, *([port_flag, "0"] if port_flag else []))
    assert res.returncode == 2, res.stderr
    assert f"error: {flag}: cannot listen on {host}:" in res.stderr
    assert "Traceback" not in res.stderr
    assert not marker.exists()


def test_console_log_format_start_and_stop_lines(tmp_path: Path) -> None:
    spec = tmp_path / "fleet.yaml"
    store = f"sqlite:///{tmp_path / 'n.db'}"
    spec.write_text(yaml.safe_dump({"controller": {"store_url": store, "workdir": str(tmp_path)}, "targets": []}))
    proc = subprocess.Popen(
        [*NOVACRON, "run", "-c", str(spec), "--log-format", "console", "--metrics-port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    try:
        first = proc.stderr.readline()
        assert "novacron started" in first
        assert "api=http://127.0.0.1:" in first
        assert "metrics=http://127.0.0.1:" in first
        assert not first.lstrip().startswith("{"), "console lines, not JSON"
    finally:
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _out, rest = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "novacron stopped" in rest
    assert "reason=SIGINT" in rest


def test_a_second_run_of_the_same_spec_says_a_controller_is_already_running(tmp_path: Path) -> None:
    spec, _marker = _spec_with_marker(tmp_path)
    with controller(spec) as first:
        pid = first.started["pid"]
        res = cli("run", "-c", str(spec))
        assert first.proc.poll() is None, "the running controller is left alone"
    assert res.returncode == 2, res.stderr
    assert f"a controller is already running for this spec on this host (pid {pid}" in res.stderr
    assert "novacron status" in res.stderr
    assert f"kill {pid}" in res.stderr
    assert "--node-id" not in res.stderr, "another node id is not the fix for a spec of this host's own targets"
    assert "Traceback" not in res.stderr


def test_a_bad_log_format_is_bad_input(tmp_path: Path) -> None:
    res = cli("run", "-c", str(tmp_path / "fleet.yaml"), "--log-format", "xml")
    assert res.returncode == 2
    assert "--log-format" in res.stderr


def test_schema_validates_the_example_specs(tmp_path: Path) -> None:
    import json

    import jsonschema

    res = cli("schema")
    assert res.returncode == 0, res.stderr
    schema = json.loads(res.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    examples = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))
    assert examples
    for example in examples:
        jsonschema.validate(yaml.safe_load(example.read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"targets": [{"name": "Bad Name", "command": []}]}, schema)
    out = tmp_path / "fleet.schema.json"
    assert cli("schema", "-o", str(out)).returncode == 0
    assert json.loads(out.read_text()) == schema
    unwritable = cli("schema", "-o", str(tmp_path / "no-such-dir" / "x.json"))
    assert unwritable.returncode == 2
    assert "--output" in unwritable.stderr


def test_bench_footprint_prints_one_json_object_per_fleet_size() -> None:
    import json

    res = cli("bench", "footprint", "--targets", "2", "--idle-s", "1", timeout=120)
    assert res.returncode == 0, res.stderr
    result = json.loads(res.stdout)
    run = result["by_targets"]["2"]
    assert set(run) == {"rss_mb", "start_to_first_probe_ms", "cpu_percent_idle", "cpu_ms_to_first_probe"}
    assert run["rss_mb"] > 0
    assert run["start_to_first_probe_ms"] > 0
    bad = cli("bench", "footprint", "--targets", "0")
    assert bad.returncode == 2
    assert "--targets" in bad.stderr
