"""Python runbooks share the generator contract; the CLI validates, lists, exports and previews."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from novacron.cli import app
from novacron.incidents.runbooks import (
    RunbookContext,
    RunbookGenerator,
    RunbookRegistry,
    RunbookResult,
    dry_run,
    runbook,
)
from novacron.model import ActionKind, FaultKind, Incident, IncidentId, IncidentStatus, Priority, TargetId

GOOD = """
name: disk-full
match: {kinds: [alert], labels: {alertname: "Disk*"}}
steps:
  - {name: clean, action: cleanup, params: {path: /var/tmp}, on_failure: next, goto: end}
  - {name: page, action: escalate}
"""


def incident(kind: FaultKind = FaultKind.HANG) -> Incident:
    return Incident(
        id=IncidentId("inc-1"),
        target=TargetId("api-0"),
        kind=kind,
        status=IncidentStatus.OPEN,
        priority=Priority.P2,
        opened_at=10.0,
        since=9.0,
    )


def test_python_runbook_registers_matches_and_adapts_to_outcomes() -> None:
    reg = RunbookRegistry()

    @runbook(kinds=[FaultKind.HANG], labels={"tier": "api"}, registry=reg)
    def unstick(ctx: RunbookContext) -> RunbookGenerator:
        """Restart; if that does not help, scale out."""
        outcome = yield ctx.action(ActionKind.RESTART, step="restart")
        if outcome.ok:
            return RunbookResult("succeeded", ("restart",))
        yield ctx.action(ActionKind.SCALE_OUT, step="scale", params={"count": 1})
        return None

    assert [b.name for b in reg.matching(incident(), {"tier": "api"})] == ["unstick"]
    assert reg.matching(incident(FaultKind.CRASH), {"tier": "api"}) == []
    book = reg.get("unstick")
    c = RunbookContext(incident(), {"tier": "api"})
    assert [a.kind for a in dry_run(book, c).actions] == [ActionKind.RESTART]
    plan = dry_run(book, c, [False])
    assert [a.kind for a in plan.actions] == [ActionKind.RESTART, ActionKind.SCALE_OUT]
    assert plan.result.status == "succeeded"
    assert plan.actions[1].requested_by == "runbook:unstick"
    assert plan.actions[1].idempotency_key == "inc-1/runbook/unstick/2/scale"


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_cli_schema_validate_list_and_dry_run(tmp_path: Path) -> None:
    code, out = run_cli("runbooks", "schema")
    assert code == 0
    assert json.loads(out)["title"] == "NovaCron runbook"

    good = tmp_path / "disk.yaml"
    good.write_text(GOOD)
    code, out = run_cli("runbooks", "validate", "-f", str(good))
    assert code == 0
    assert "1 runbook(s), 2 step(s)" in out

    code, out = run_cli("runbooks", "list", "-f", str(tmp_path))
    assert code == 0
    assert "disk-full" in out
    assert "alert" in out

    code, out = run_cli("runbooks", "dry-run", "-f", str(good), "--kind", "alert", "--fail", "fail")
    assert code == 0
    assert "1. clean: cleanup target" in out
    assert "2. page: escalate" in out
    assert "result: succeeded" in out


def test_cli_refuses_bad_runbook_with_exit_2_naming_the_step(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsteps:\n  - {name: fix, action: restart}\n  - {name: nuke, action: format_disk}\n")
    proc = subprocess.run(
        [sys.executable, "-c", "from novacron.cli import main; main()", "runbooks", "validate", "-f", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "step 'nuke'" in proc.stderr
    assert "format_disk" in proc.stderr
