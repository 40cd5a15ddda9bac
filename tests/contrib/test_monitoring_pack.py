"""The Prometheus/Grafana/systemd pack in contrib/, checked by the real tools.

The alert rules pass ``promtool check rules`` and their own ``promtool test rules`` cases;
a real Prometheus scrapes a real ``novacron run`` (with a real service that crashes once),
evaluates every alert rule without error, and answers every PromQL expression of the
Grafana dashboard with data; the systemd unit passes ``systemd-analyze verify``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..binaries import free_port, require, running, wait_until
from ..cli.runner import controller, service, wait_for, write_spec

pytestmark = pytest.mark.slow

CONTRIB = Path(__file__).parents[2] / "contrib"
# Grafana fills these in; the test gives them the values a user would pick.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$job": "novacron"}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = require("promtool", package="prometheus")
    return subprocess.run(
        [binary, *args], capture_output=True, text=True, timeout=120, check=False, cwd=CONTRIB / "prometheus"
    )


def test_alert_rules_pass_promtool_check_and_their_unit_tests() -> None:
    checked = _promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "4 rules found" in checked.stdout
    tested = _promtool("test", "rules", "alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
    config = _promtool("check", "config", "--syntax-only", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr


def _dashboard_queries() -> list[tuple[str, str]]:
    dash = json.loads((CONTRIB / "grafana" / "novacron.json").read_text())
    out = []
    for panel in dash["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for name, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(name, value)
            out.append((panel["title"], expr))
    return out


def _query(prom: str, expr: str) -> list[dict[str, Any]]:
    res = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=10)
    body = res.json()
    assert res.status_code == 200, f"{expr}: {body}"
    assert body["status"] == "success", f"{expr}: {body}"
    return list(body["data"]["result"])


def test_dashboard_queries_and_alerts_against_a_real_prometheus_scraping_a_real_controller(tmp_path: Path) -> None:
    binary = require("prometheus", package="prometheus")
    spec = write_spec(tmp_path, service("api"))
    with controller(spec, "--metrics-port", "0") as run:
        metrics_url = run.started["metrics"]
        exposition = httpx.get(metrics_url).text
        assert 'novacron_target_up{target="api"}' in exposition
        assert "_created" not in exposition, "no *_created series"
        scrape = metrics_url.removeprefix("http://").removesuffix("/metrics")
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: ['{CONTRIB / 'prometheus' / 'alerts.yml'}']\n"
            f"scrape_configs:\n  - {{job_name: novacron, static_configs: [{{targets: ['{scrape}']}}]}}\n"
        )
        port = free_port()
        prom = f"http://127.0.0.1:{port}"
        argv = [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}"]
        argv.append(f"--web.listen-address=127.0.0.1:{port}")
        log = tmp_path / "prometheus.log"
        with running(argv, log) as proc:
            wait_until(lambda: _scraping(prom), proc, log, "prometheus", 60)
            token = Path(run.started["token_file"]).read_text().strip()
            pid = wait_for(lambda: _api_pid(run.started["api"], token), "api healthy")
            os.kill(pid, signal.SIGKILL)  # one crash: faults, an action, a restart, a closed incident
            wait_for(
                lambda: _query(prom, 'increase(novacron_incidents_closed_total{job="novacron"}[1m]) > 0'),
                "Prometheus to see the incident closed",
                timeout=30,
            )
            time.sleep(2.5)  # a few more scrapes after the repair, so every rate has two points
            empty = [(title, expr) for title, expr in _dashboard_queries() if not _query(prom, expr)]
            assert not empty, f"dashboard queries without data: {empty}"
            jobs = httpx.get(f"{prom}/api/v1/label/job/values", params={"match[]": "novacron_build_info"}).json()
            assert "novacron" in jobs["data"], "the dashboard's $job variable finds the controller"
            rules = wait_for(lambda: _evaluated_rules(prom), "every alert rule evaluated")
            assert {r["name"] for r in rules} == {
                "NovaCronControllerDown",
                "NovaCronTargetFlapping",
                "NovaCronEscalationOpen",
                "NovaCronHealingSuccessLow",
            }
            assert all(r["health"] == "ok" for r in rules), rules
            assert all(r["state"] == "inactive" for r in rules), "a healthy fleet raises no alert"


def _scraping(prom: str) -> bool:
    """Prometheus is ready (it answers 503 while starting) and has scraped the controller."""
    if httpx.get(f"{prom}/-/ready", timeout=5).status_code != 200:
        return False
    return bool(_query(prom, 'up{job="novacron"} == 1'))


def _api_pid(api: str, token: str) -> int | None:
    res = httpx.get(f"{api}/status", headers={"Authorization": f"Bearer {token}"}, timeout=5).json()
    [target] = res["targets"]
    return int(target["pid"]) if target["state"] == "healthy" and target["pid"] else None


def _evaluated_rules(prom: str) -> list[dict[str, Any]]:
    groups = httpx.get(f"{prom}/api/v1/rules", timeout=10).json()["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    done = len(rules) == 4 and all(r.get("lastEvaluation", "").startswith("20") for r in rules)
    return rules if done else []


def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = require("systemd-analyze", package="systemd")
    unit = (CONTRIB / "systemd" / "novacron.service").read_text()
    assert "ExecStart=/opt/novacron/bin/novacron run -c /etc/novacron/fleet.yaml" in unit
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit  # SIGHUP reloads the spec in place
    # verify checks that ExecStart exists: point it at this environment's novacron.
    local = tmp_path / "novacron.service"
    script = Path(sys.executable).with_name("novacron")
    local.write_text(unit.replace("/opt/novacron/bin/novacron", str(script)))
    res = subprocess.run([analyze, "verify", str(local)], capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "novacron.service" not in res.stderr, res.stderr
