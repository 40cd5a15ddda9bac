"""The dashboard end to end in headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, Playwright, expect, sync_playwright

from novacron.demo.fleet import free_port_block
from novacron.healing.catalog import new_action
from novacron.model import ActionKind, TargetId
from novacron.store.tokens import Role
from novacron.testing import http_service_target

from .conftest import alert, bearer, webhook
from .servers import on_loop, served

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _browser_page(pw: Playwright) -> Page:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`")
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
    return browser.new_page()


def test_the_dashboard_shows_the_fleet_and_steers_it(tmp_path: Path) -> None:
    target = http_service_target("api", free_port_block(2))
    with served(tmp_path, target) as (base, c, tokens), sync_playwright() as pw:
        op = bearer(tokens[Role.OPERATOR])
        [inc_id] = httpx.post(f"{base}/webhooks/alertmanager", json=webhook(alert()), headers=op).json()["opened"]
        action = new_action(ActionKind.REPLACE, TargetId("api"), key="dash/replace")
        decision = on_loop(c, lambda: c.approvals.request(action))

        page = _browser_page(pw)
        page.goto(f"{base}/")
        expect(page).to_have_url(f"{base}/dashboard")
        expect(page.locator("#conn")).to_have_text("enter a token")

        page.fill("#token", "nvc_bad.token")
        page.click("#save-token")
        expect(page.locator("#error")).to_contain_text("401")

        page.fill("#token", tokens[Role.ADMIN])
        page.click("#save-token")
        expect(page.locator("#error")).to_be_hidden()
        expect(page.locator("#fleet tbody tr[data-target='api'] td").nth(1)).to_have_text("healthy", timeout=15_000)

        # Open incidents, a click shows the timeline and the post-mortem.
        row = page.locator(f"#incidents tbody tr[data-incident='{inc_id}']")
        expect(row).to_contain_text("checkout")
        row.click()
        expect(page.locator("#detail-id")).to_have_text(inc_id)
        expect(page.locator("#timeline tbody tr").first).to_contain_text("detected")
        expect(page.locator("#postmortem h1")).to_have_text(f"Post-mortem: incident {inc_id}")
        page.click("#ack")
        expect(page.locator("#detail-summary")).to_contain_text("acknowledged by admin-1")

        # MTTD/MTTR charts are drawn from the incidents.
        expect(page.locator("#chart-mttd rect.bar")).to_have_count(1)
        expect(page.locator("#chart-mttr rect")).to_have_count(1)

        # Pending approval: approve from the page, the controller's request is answered.
        approvals = page.locator(f"#approvals tbody tr[data-action='{action.id}']")
        expect(approvals).to_contain_text("replace")
        approvals.locator("button.approve").click()
        expect(approvals).to_have_count(0)
        assert on_loop(c, decision.result) == (True, "admin-1")

        # The kill switch.
        expect(page.locator("#autonomous-state")).to_have_text("enabled")
        page.click("#kill-switch")
        expect(page.locator("#autonomous-state")).to_have_text("disabled (kill switch)")
        assert c.gate.enabled is False

        # Reloading keeps the token (localStorage).
        page.reload()
        expect(page.locator("#fleet tbody tr[data-target='api']")).to_have_count(1)
        audit = httpx.get(f"{base}/audit", headers=op).json()
        verbs = {(e["actor"], e["verb"]) for e in audit}
        assert {
            ("admin-1", "api.incident.ack"),
            ("admin-1", "api.approval.approve"),
            ("admin-1", "autonomous.disable"),
        } <= verbs
