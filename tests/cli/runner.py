"""The ``novacron`` command as a user runs it: subprocesses, a real controller, its log and store."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from novacron.demo.fleet import free_port_block
from novacron.settings import HttpCheck, TargetSpec
from novacron.testing import http_service_target

NOVACRON = [sys.executable, "-m", "novacron.cli"]


def cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``novacron ARGS`` (stdout is a pipe, as in ``| cat``); never raises on a non-zero exit."""
    full_env = {k: v for k, v in os.environ.items() if k != "NOVACRON_TOKEN"}
    full_env.update(env or {})
    return subprocess.run(
        [*NOVACRON, *args], capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd, env=full_env
    )


def cli_json(*args: str, cwd: Path | None = None, expect: int = 0) -> Any:
    """Run a command with ``--json``, check its exit code and parse its one JSON document."""
    res = cli(*args, "--json", cwd=cwd)
    assert res.returncode == expect, f"exit {res.returncode}: {res.stderr}"
    return json.loads(res.stdout)


def service(name: str = "api", **overrides: Any) -> TargetSpec:
    """A demo HTTP service target on free ports (room for a few replicas)."""
    return http_service_target(name, free_port_block(4), **overrides)


def steady_service(name: str = "api") -> TargetSpec:
    """A demo HTTP service whose check tolerates a busy machine.

    For tests about steering rather than detection: a slow answer on a loaded machine must not
    become a hang fault and an extra restart that the test did not ask for.
    """
    port = free_port_block(4)
    check = HttpCheck(url=f"http://127.0.0.1:{port}/health", interval_s=0.2, timeout_s=2.0, failures=3)
    return http_service_target(name, port, checks=[check], start_timeout_s=30.0)


def write_spec(tmp_path: Path, *targets: TargetSpec, **policy: Any) -> Path:
    """A fleet spec in ``tmp_path`` whose store and workdir live there too."""
    spec = {
        "name": "cli-test",
        "policy": policy,
        "controller": {"store_url": f"sqlite:///{tmp_path / 'n.db'}", "workdir": str(tmp_path / "work")},
        "targets": [t.model_dump(mode="json") for t in targets],
    }
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@dataclass
class Running:
    """A ``novacron run`` process and what it said at start."""

    proc: subprocess.Popen[str]
    spec: Path
    log: Path
    started: dict[str, Any]

    def lines(self) -> list[dict[str, Any]]:
        """The JSON log lines so far."""
        out = []
        for line in self.log.read_text().splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out


def _wait_started(proc: subprocess.Popen[str], log: Path, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if '"novacron started"' in line:
                return dict(json.loads(line))
        if proc.poll() is not None:
            pytest.fail(f"novacron run exited with {proc.returncode}: {log.read_text()[-2000:]}")
        time.sleep(0.05)
    pytest.fail(f"novacron run did not start: {log.read_text()[-2000:]}")


def spawn(spec: Path, *extra: str, start_timeout: float = 30) -> Running:
    """Start ``novacron run -c SPEC`` with JSON logs in the spec's folder; wait for its start line."""
    log = spec.with_name("run.log")
    with log.open("w") as err:
        proc = subprocess.Popen(
            [*NOVACRON, "run", "-c", str(spec), "--log-format", "json", *extra],
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
            cwd=spec.parent,
        )
    return Running(proc, spec, log, _wait_started(proc, log, start_timeout))


@contextlib.contextmanager
def controller(spec: Path, *extra: str, start_timeout: float = 30) -> Iterator[Running]:
    """A running controller for the block; stopped (SIGTERM) after it, its targets with it."""
    run = spawn(spec, *extra, start_timeout=start_timeout)
    try:
        yield run
    finally:
        stop(run)


def stop(run: Running) -> None:
    """SIGTERM the controller (if it still runs), then kill anything of the fleet left behind."""
    if run.proc.poll() is None:
        run.proc.send_signal(signal.SIGTERM)
        try:
            run.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            run.proc.kill()
            run.proc.wait()
    kill_fleet(run.spec.parent)


def kill_fleet(folder: Path) -> None:
    """Kill demo services started for the spec in ``folder`` (orphans after a SIGKILLed controller)."""
    from novacron.store import Store

    db = folder / "n.db"
    if not db.exists():
        return
    store = Store.open(f"sqlite:///{db}")
    try:
        for rec in store.processes():
            with contextlib.suppress(psutil.Error, OSError):
                proc = psutil.Process(rec.pid)
                if abs(proc.create_time() - rec.create_time) < 1.0:
                    os.killpg(rec.pid, signal.SIGKILL)
    finally:
        store.close()


def wait_for(pred: Any, what: str, timeout: float = 60.0) -> Any:
    """Poll ``pred()`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")
