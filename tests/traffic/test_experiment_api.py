"""The experiment API and its dashboard view on a controller with a real HAProxy frontend."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from novacron.demo.fleet import free_port_block
from novacron.settings import FrontendSpec
from novacron.store.tokens import Role
from novacron.testing import http_service_target
from tests.api.conftest import bearer
from tests.api.servers import served
from tests.api.test_dashboard import _browser_page, _sign_in
from tests.binaries import require

pytestmark = pytest.mark.slow


@pytest.mark.timeout(180)
def test_api_starts_shows_and_stops_an_experiment_and_the_dashboard_draws_it(tmp_path: Path) -> None:
    require("haproxy", package="haproxy")
    listen = free_port_block(1)
    web = http_service_target("web", free_port_block(2), frontend=FrontendSpec(listen=f"127.0.0.1:{listen}"))
    variant = [sys.executable, "-m", "novacron.demo.service", "--name", "web-b", "--port", "{port}"]
    with served(tmp_path, web) as (base, _c, tokens), sync_playwright() as pw:
        op, viewer = bearer(tokens[Role.OPERATOR]), bearer(tokens[Role.VIEWER])
        body = {"name": "canary", "target": "web", "command": variant, "split": 50}
        assert httpx.post(f"{base}/experiments", json=body, headers=viewer).status_code == 403
        bad = httpx.post(f"{base}/experiments", json={**body, "split": 150}, headers=op, timeout=30)
        assert bad.status_code in (400, 422)
        unknown = httpx.post(f"{base}/experiments", json={**body, "settings": {"mde": -1}}, headers=op, timeout=30)
        assert unknown.status_code == 400
        assert unknown.json()["field"] == "mde"
        baseline = httpx.post(f"{base}/experiments", json={**body, "arm": "a"}, headers=op, timeout=30)
        assert baseline.status_code == 400
        assert baseline.json() == {"detail": "arm names must be distinct and not 'a' (the baseline)", "field": "arms"}
        started = httpx.post(f"{base}/experiments", json=body, headers=op, timeout=30)
        assert started.status_code == 201, started.text
        assert started.json()["split"] == 50.0
        for _ in range(60):
            assert httpx.get(f"http://127.0.0.1:{listen}/", timeout=5).status_code == 200
        shown = httpx.get(f"{base}/experiments/canary", headers=viewer, timeout=10).json()
        assert shown["arms"]["b"]["requests"] > 0
        assert shown["looks"]
        assert set(shown["fixed_horizon"]) == {"error_ratio", "latency"}
        assert httpx.get(f"{base}/experiments/nothing", headers=viewer).status_code == 404

        page = _browser_page(pw)
        page.goto(f"{base}/dashboard")
        _sign_in(page, tokens[Role.VIEWER])
        row = page.locator("#experiments tbody tr").first
        expect(row).to_contain_text("canary", timeout=15_000)
        expect(row).to_contain_text("running")
        expect(page.locator("#experiment-detail")).to_be_visible()
        expect(page.locator("#chart-experiment polyline")).to_have_count(3, timeout=15_000)

        stopped = httpx.post(f"{base}/experiments/canary/stop", headers=op, timeout=30)
        assert stopped.status_code == 200
        assert stopped.json()["phase"] == "stopped"
        assert httpx.post(f"{base}/experiments/canary/stop", headers=op, timeout=30).status_code == 400
