"""Tuning studies on the API and the dashboard: `novacron tune` / `evolve` runs, then the page draws them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import expect, sync_playwright

from novacron.store.tokens import Role
from tests.cli.runner import NOVACRON
from tests.tuning.conftest import tuning_spec

from .conftest import bearer
from .servers import served
from .test_dashboard import _browser_page, _sign_in


def _run(*args: str) -> Any:
    res = subprocess.run([*NOVACRON, *args, "--json"], capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_the_api_serves_studies_and_the_dashboard_draws_them(tmp_path: Path) -> None:
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    spec = str(tuning_spec(spec_dir))
    with served(tmp_path) as (base, _c, tokens), sync_playwright() as pw:
        store = f"sqlite:///{tmp_path / 'n.db'}"  # the served controller's store
        tuned = _run("tune", "-c", spec, "--store", store, "--workers", "1")
        evolved = _run("evolve", "-c", spec, "--store", store, "--workers", "1", "--study", "layouts")
        viewer = bearer(tokens[Role.VIEWER])

        listed = httpx.get(f"{base}/studies", headers=viewer).json()
        assert {s["name"]: s["kind"] for s in listed} == {"shop-tune-gp": "tune", "layouts": "evolve"}
        one = httpx.get(f"{base}/studies/shop-tune-gp", headers=viewer).json()
        assert one["trial_count"] == len(one["trials"]) == 4
        assert one["params"] == sorted(tuned["best"]["params"])
        assert one["result"]["best"]["trial"] == tuned["best"]["trial"]
        assert all(set(t["params"]) == set(one["params"]) for t in one["trials"])
        assert httpx.get(f"{base}/studies/nope", headers=viewer).status_code == 404
        assert httpx.get(f"{base}/studies").status_code == 401
        assert httpx.get(f"{base}/studies?kind=warp", headers=viewer).status_code == 422

        page = _browser_page(pw)
        page.goto(f"{base}/dashboard")
        _sign_in(page, tokens[Role.VIEWER])
        rows = page.locator("#studies tbody tr")
        expect(rows).to_have_count(2, timeout=15_000)

        # The tuning study: one line per trial through its parameters and its score, the winner marked.
        page.locator("#studies tbody tr[data-study='shop-tune-gp']").click()
        expect(page.locator("#study-name")).to_contain_text("shop-tune-gp (tune, done)")
        chart = page.locator("#chart-study")
        expect(chart.locator("polyline.trial")).to_have_count(4)
        expect(chart.locator("polyline.trial.best")).to_have_count(1)
        names = chart.locator("text.axis-name")
        expect(names).to_have_count(len(one["params"]) + 1)
        expect(names.last).to_have_text("score")

        # The layout search: every layout, the Pareto front in its own colour, the objectives as axes.
        page.locator("#studies tbody tr[data-study='layouts']").click()
        expect(page.locator("#study-name")).to_contain_text("layouts (evolve, done)")
        front = {json.dumps(p["layout"], sort_keys=True) for p in evolved["front"]}
        expect(chart.locator("polyline.trial.front")).to_have_count(_on_front(base, viewer, front))
        expect(names.last).to_have_text(evolved["objectives"][-1])


def _on_front(base: str, headers: dict[str, str], front: set[str]) -> int:
    """Complete layout trials whose genome is a point of the stored front (a genome may recur)."""
    trials = httpx.get(f"{base}/studies/layouts", headers=headers).json()["trials"]
    hits = [t for t in trials if t["state"] == "complete" and json.dumps(t["params"], sort_keys=True) in front]
    assert hits
    return len(hits)
