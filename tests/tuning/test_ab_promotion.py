"""`novacron tune --promote` with `tuning.ab`: the winner runs as a canary on the running fleet first."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from novacron.demo.fleet import free_port_block
from novacron.settings import FrontendSpec
from tests.binaries import require
from tests.cli.runner import NOVACRON, cli, cli_json, controller, service, write_spec

pytestmark = pytest.mark.slow

# A canary decided after a few hundred requests: the experiments tests' fast settings.
FAST = {"steps": [50, 100], "mde": 2.0, "base_rate": 0.05, "min_samples": 100, "max_samples": 3000}
INTERVAL = "targets.web.checks.0.interval_s"


def _spec(tmp_path: Path, ab: dict[str, Any], *, frontend: bool = True) -> tuple[Path, int]:
    listen = free_port_block(1)
    extra = {"frontend": FrontendSpec(listen=f"127.0.0.1:{listen}")} if frontend else {}
    command = [sys.executable, "-m", "novacron.demo.service", "--name", "web", "--port", "{port}"]
    spec = write_spec(tmp_path, service("web", replicas=1, command=command, **extra))
    data = yaml.safe_load(spec.read_text())
    data["tuning"] = {
        "method": "random",
        "budget": 3,
        "seeds": [0],
        "validation_seeds": [100],
        "recheck": 1,
        "params": [
            {"path": INTERVAL, "type": "log", "bounds": [5, 40]},
            {"path": "targets.web.checks.0.failures", "type": "int", "bounds": [1, 4]},
        ],
        "objectives": {"mttr_mean_s": 1.0, "false_actions_per_day": 0.005},
        "scenario": {"hosts": 2, "vms": 8, "window_s": 200, "tail_s": 100, "fault_rate_per_hour": 90},
        "ab": {**ab, "look_interval_s": 0.1},
    }
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    return spec, listen


def _tune_under_load(spec: Path, listen: int | None) -> dict[str, Any]:
    """Run `novacron tune --promote` while requests reach the frontend (none without ``listen``)."""
    proc = subprocess.Popen(
        [*NOVACRON, "tune", "-c", str(spec), "--workers", "1", "--promote", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with httpx.Client(timeout=5.0) as client:
        while listen is not None and proc.poll() is None:
            with contextlib.suppress(httpx.HTTPError):  # a server being swapped in or out
                client.get(f"http://127.0.0.1:{listen}/")
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    return dict(json.loads(stdout))


def _interval(spec: Path) -> float:
    data = yaml.safe_load(spec.read_text())
    return float(data["targets"][0]["checks"][0]["interval_s"])


@pytest.mark.timeout(420)
def test_a_winner_that_holds_as_a_canary_is_promoted(tmp_path: Path) -> None:
    require("haproxy", package="haproxy")
    spec, listen = _spec(tmp_path, {**FAST, "timeout_s": 240})
    with controller(spec, start_timeout=120):
        out = _tune_under_load(spec, listen)
        [canary] = out["ab"]
        assert canary["phase"] == "promoted", canary
        assert canary["arms"]["tuned"]["requests"] >= FAST["min_samples"]
        [promo] = out["promotion"]
        assert promo["status"] in ("verified", "applied"), promo
        assert _interval(spec) == pytest.approx(out["best"]["params"][INTERVAL])
        listed = {e["name"]: e["phase"] for e in cli_json("experiment", "list", "-c", str(spec))}
        assert listed == {canary["experiment"]: "promoted"}


@pytest.mark.timeout(420)
def test_a_canary_without_a_decision_in_time_promotes_nothing(tmp_path: Path) -> None:
    require("haproxy", package="haproxy")
    never = {**FAST, "min_samples": 100_000, "max_samples": 100_000, "timeout_s": 2}
    spec, _listen = _spec(tmp_path, never)
    before = _interval(spec)
    with controller(spec, start_timeout=120):
        # No traffic: nothing to judge, so no decision can come before the timeout (with traffic,
        # a canary's first answers, slower or failing while it warms up, may rightly roll it back).
        out = _tune_under_load(spec, None)
        [canary] = out["ab"]
        assert canary["phase"] == "stopped"
        assert "no decision within 2 s" in canary["reason"]
        assert out["promotion"] == []
        assert _interval(spec) == before  # nothing promoted: the spec file is as it was
        listed = {e["name"]: e["phase"] for e in cli_json("experiment", "list", "-c", str(spec))}
        assert listed == {canary["experiment"]: "stopped"}


def test_an_ab_needs_a_frontend_and_says_so(tmp_path: Path) -> None:
    spec, _ = _spec(tmp_path, FAST, frontend=False)
    res = cli("tune", "-c", str(spec), "--workers", "1", "--promote", timeout=300)
    assert res.returncode == 2
    assert "tuning.ab" in res.stderr
    assert "no frontend" in res.stderr
    assert _interval(spec) == 0.1  # nothing promoted
    skipped = cli_json("tune", "-c", str(spec), "--workers", "1", "--promote", "--no-ab")
    assert "ab" not in skipped  # --no-ab wins over the spec's block: promoted through the gate alone
    assert [p["status"] for p in skipped["promotion"]] == ["verified"]
    assert _interval(spec) == pytest.approx(skipped["best"]["params"][INTERVAL])


class _FakeApi:
    """The experiments API as a script: each canary ends in the phase given for its target."""

    def __init__(self, ends: dict[str, str]) -> None:
        self.ends = ends
        self.calls: list[tuple[str, str]] = []
        self.started: dict[str, str] = {}

    def __call__(self, method: str, path: str, body: dict[str, Any] | None = None, *, wait_s: float = 0.0) -> Any:
        self.calls.append((method, path))
        if method == "POST" and path == "/experiments":
            assert body is not None
            self.started[body["name"]] = body["target"]
            return {"name": body["name"], "target": body["target"], "phase": "running"}
        name = path.split("/")[2].split("?", maxsplit=1)[0]
        target = self.started[name]
        phase = "stopped" if path.endswith("/stop") else self.ends[target]
        return {"name": name, "target": target, "phase": phase, "reason": f"{phase} by the judge", "arms": {}}


def _two_targets() -> tuple[Any, Any]:
    from novacron.runtime.tuneproblem import apply_values
    from novacron.testing import fleet

    command = [sys.executable, "-m", "novacron.demo.service", "--port", "{port}"]
    targets = [
        service(name, command=command, frontend=FrontendSpec(listen=f"127.0.0.1:{free_port_block(1)}"))
        for name in ("a", "b")
    ]
    spec = fleet(*targets)
    return spec, apply_values(spec, {"targets.a.checks.0.interval_s": 9.0, "targets.b.checks.0.interval_s": 9.0})


def test_a_canary_rolled_back_stops_the_promotion_and_starts_no_other() -> None:
    from novacron.cli._tune_ab import run_canaries
    from novacron.tuningspec import AbSpec

    spec, tuned = _two_targets()
    api = _FakeApi({"a": "rolled_back", "b": "promoted"})
    out = run_canaries(spec, tuned, AbSpec(), study="s", call=api, sleep=lambda _: None)
    assert [(c["target"], c["phase"]) for c in out] == [("a", "rolled_back")]
    assert list(api.started.values()) == ["a"]  # b's canary never started
    both = _FakeApi({"a": "promoted", "b": "promoted"})
    out = run_canaries(spec, tuned, AbSpec(), study="s", call=both, sleep=lambda _: None)
    assert [c["phase"] for c in out] == ["promoted", "promoted"]


def test_an_undecided_canary_is_stopped_at_its_timeout() -> None:
    from novacron.cli._tune_ab import run_canaries
    from novacron.tuningspec import AbSpec

    spec, tuned = _two_targets()
    api = _FakeApi({"a": "running", "b": "running"})
    ticks = iter(range(1000))
    out = run_canaries(
        spec, tuned, AbSpec(timeout_s=5), study="s", call=api, sleep=lambda _: None, clock=lambda: float(next(ticks))
    )
    assert [c["phase"] for c in out] == ["stopped"]
    assert "no decision within 5 s" in out[0]["reason"]
    assert ("POST", f"/experiments/{out[0]['experiment']}/stop") in api.calls
