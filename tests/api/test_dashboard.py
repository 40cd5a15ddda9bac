"""The dashboard end to end in headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, Playwright, expect, sync_playwright

from novacron.demo.fleet import free_port_block
from novacron.healing.approvals import Answer
from novacron.healing.catalog import new_action
from novacron.model import ActionKind, TargetId
from novacron.store.learning import PolicyLog
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
    return browser.new_page(viewport={"width": 1400, "height": 1000})


def _sign_in(page: Page, token: str) -> None:
    page.fill("#token", token)
    page.click("#save-token")


def test_the_dashboard_shows_the_fleet_and_steers_it(tmp_path: Path) -> None:
    target = http_service_target("api", free_port_block(2))
    with served(tmp_path, target) as (base, c, tokens), sync_playwright() as pw:
        op = bearer(tokens[Role.OPERATOR])
        [inc_id] = httpx.post(f"{base}/webhooks/alertmanager", json=webhook(alert()), headers=op).json()["opened"]
        action = new_action(ActionKind.REPLACE, TargetId("api"), key="dash/replace")
        decision = on_loop(c, lambda: c.approvals.request(action))

        page = _browser_page(pw)
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{base}/")
        expect(page).to_have_url(f"{base}/dashboard")
        # Without a token: a sign-in state, not empty tables that claim there is nothing open.
        expect(page.locator("#signin")).to_be_visible()
        expect(page.locator("#app")).to_be_hidden()
        expect(page.get_by_text("No open incidents.")).to_be_hidden()

        _sign_in(page, "nvc_bad.token")
        expect(page.locator("#error")).to_contain_text("401")
        expect(page.locator("#signin")).to_be_visible()

        # A viewer sees everything and may change nothing.
        _sign_in(page, tokens[Role.VIEWER])
        expect(page.locator("#who")).to_have_text("signed in as viewer-1 (viewer)")
        row = page.locator("#fleet tbody tr[data-target='api']")
        expect(row.locator("td").nth(1)).to_have_text("healthy", timeout=15_000)
        expect(page.locator(f"#incidents tbody tr[data-incident='{inc_id}']")).to_contain_text("checkout")
        expect(row.locator("button")).to_have_count(0)
        expect(page.locator("#kill-switch")).to_be_hidden()
        expect(page.locator(f"#approvals tbody tr[data-action='{action.id}'] button")).to_have_count(0)
        page.locator(f"#incidents tbody tr[data-incident='{inc_id}']").click()
        expect(page.locator("#detail-id")).to_have_text(inc_id)
        expect(page.locator("#ack")).to_be_hidden()

        # An admin: the fleet with its pids and restarts, and every button.
        page.click("#forget-token")
        expect(page.locator("#signin")).to_be_visible()
        _sign_in(page, tokens[Role.ADMIN])
        expect(page.locator("#who")).to_have_text("signed in as admin-1 (admin)")
        pid_cell = row.locator("td").nth(2)
        expect(pid_cell).to_have_text(str(c.actuator.pids("api")[0]))
        expect(row.locator("td").nth(4)).to_have_text("0")
        row.locator("button.restart").click()
        expect(page.locator("#notice")).to_contain_text("restart api: verified", timeout=20_000)
        expect(row.locator("td").nth(4)).to_have_text("1", timeout=10_000)
        row.locator("select.heal-action").select_option("replace")
        row.locator("button.heal").click()
        expect(page.locator("#notice")).to_contain_text("replace api: verified", timeout=20_000)

        # Open incidents, a click shows the timeline and the post-mortem; acknowledge.
        page.locator(f"#incidents tbody tr[data-incident='{inc_id}']").click()
        expect(page.locator("#detail-id")).to_have_text(inc_id)
        expect(page.locator("#timeline tbody tr").first).to_contain_text("detected")
        expect(page.locator("#postmortem h1")).to_have_text(f"Post-mortem: incident {inc_id}")
        page.click("#ack")
        expect(page.locator("#detail-summary")).to_contain_text("acknowledged by admin-1")

        # Readable tables: the MTTD column is not clipped; long action details stay on one line.
        mttd = page.locator(f"#incidents tbody tr[data-incident='{inc_id}'] td.mttd")
        assert mttd.evaluate("td => td.scrollWidth <= td.clientWidth")
        detail = page.locator("#actions tbody tr td.detail").first
        expect(detail).to_have_attribute("title", "replaced replicas [0]; healthy again")
        line_height = detail.evaluate("td => parseFloat(getComputedStyle(td).lineHeight) || 20")
        assert detail.bounding_box()["height"] < 2 * line_height + 12  # type: ignore[index]

        # Charts with axes: ticks in ms and titled axes, one bar per incident.
        expect(page.locator("#chart-mttd rect.bar")).to_have_count(1)
        expect(page.locator("#chart-mttr rect")).to_have_count(1)
        expect(page.locator("#chart-mttd text.tick.y")).to_have_count(3)
        expect(page.locator("#chart-mttd text.title").last).to_contain_text("incidents, oldest → newest")
        expect(page.locator("#chart-mttd text.tick.y").first).to_have_text("0 ms")

        # Pending approval: approve from the page, the controller's request is answered.
        approvals = page.locator(f"#approvals tbody tr[data-action='{action.id}']")
        expect(approvals).to_contain_text("replace")
        approvals.locator("button.approve").click()
        expect(approvals).to_have_count(0)
        assert on_loop(c, decision.result) == Answer(True, "admin-1")

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
            ("admin-1", "api.heal.restart"),
            ("admin-1", "api.heal.replace"),
            ("admin-1", "api.approval.approve"),
            ("admin-1", "autonomous.disable"),
        } <= verbs
        # The bad token's 401 is the page's only error (no /favicon.ico 404 on every load).
        assert errors, "the bad token's 401 shows in the console"
        assert all("401" in e for e in errors), errors


def test_an_operator_marks_an_action_good_or_bad_with_a_note_from_the_dashboard(tmp_path: Path) -> None:
    target = http_service_target("api", free_port_block(2))
    with served(tmp_path, target) as (base, c, tokens), sync_playwright() as pw:
        op = bearer(tokens[Role.OPERATOR])
        body = {"target": "api", "action": "restart", "wait_s": 20}
        restarted = httpx.post(f"{base}/autonomous/heal", json=body, headers=op, timeout=30).json()
        action_id = restarted["action_id"]
        page = _browser_page(pw)
        page.goto(f"{base}/dashboard")

        # A viewer may read the actions but not mark them.
        _sign_in(page, tokens[Role.VIEWER])
        row = page.locator(f"#actions tbody tr[data-action='{action_id}']")
        expect(row).to_contain_text("restart", timeout=15_000)
        expect(row.locator("button.rate")).to_have_count(0)

        page.click("#forget-token")
        _sign_in(page, tokens[Role.OPERATOR])
        expect(page.locator("#feedback-form")).to_be_hidden()
        row.locator("button.rate").click()
        expect(page.locator("#feedback-form")).to_be_visible()
        expect(page.locator("#feedback-what")).to_contain_text(f"restart api ({action_id}, verified)")
        page.fill("#feedback-note", "a restart hid the leak")
        page.wait_for_timeout(3_000)  # a refresh of the tables meanwhile keeps the note
        expect(page.locator("#feedback-note")).to_have_value("a restart hid the leak")
        page.click("#feedback-bad")
        expect(page.locator("#notice")).to_have_text(
            f"marked {action_id} bad — kept and audited (no learning policy chose it)", timeout=15_000
        )
        expect(page.locator("#feedback-form")).to_be_hidden()

        marks = on_loop(c, lambda: PolicyLog(c.store).feedback(action_id))
        assert [(m.verdict, m.note, m.actor) for m in marks] == [("bad", "a restart hid the leak", "operator-1")]
        audit = httpx.get(f"{base}/audit", headers=op).json()
        assert any(e["verb"] == "action.feedback" and e["subject"] == action_id for e in audit)

        # Cancel sends nothing.
        row.locator("button.rate").click()
        page.click("#feedback-cancel")
        expect(page.locator("#feedback-form")).to_be_hidden()
        assert len(on_loop(c, lambda: PolicyLog(c.store).feedback(action_id))) == 1
