"""An incident's priority on its timeline, as ``novacron incidents show`` prints it: assessed, then every change."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from .runner import cli_json, controller, steady_service, wait_for, write_spec


def _api(where: list[str]) -> dict[str, Any]:
    status = cli_json("status", *where)
    return dict(next(t for t in status["targets"] if t["name"] == "api"))


def _healed_again(where: list[str], old_pid: int) -> int | None:
    """The new pid once api is healthy again and its incident resolved."""
    t = _api(where)
    done = t["state"] == "healthy" and t["pid"] not in (None, old_pid) and t["incident"] is None
    return int(t["pid"]) if done else None


def _priority_lines(where: list[str], incident: str) -> list[dict[str, Any]]:
    timeline = cli_json("incidents", "show", incident, *where)["timeline"]
    return [e for e in timeline if e["kind"] == "priority"]


@pytest.mark.timeout(240)
def test_the_first_priority_line_is_the_assessment_and_escalation_is_a_priority_line(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, steady_service("api"), flap={"threshold": 2, "window_s": 120, "quarantine_s": 600})
    where = ["-c", str(spec)]
    with controller(spec):
        first = wait_for(lambda: (t := _api(where))["state"] == "healthy" and t["pid"], "api healthy")
        os.kill(first, signal.SIGKILL)
        second = wait_for(lambda: _healed_again(where, first), "healed and resolved")
        [healed] = cli_json("incidents", "list", *where)
        assessed = _priority_lines(where, healed["id"])
        assert assessed, "the incident's priority is on its timeline"
        assert assessed[0]["detail"].startswith(f"{healed['priority']} (assessed at open): "), assessed[0]
        assert "→" not in assessed[0]["detail"], "no change from a default the incident never had"

        os.kill(second, signal.SIGKILL)  # the second crash in the flap window escalates
        wait_for(lambda: _api(where)["incident_status"] == "needs_human", "the flap escalated")
        [escalated] = [i for i in cli_json("incidents", "list", "--open", *where) if i["status"] == "needs_human"]
        assert escalated["priority"] == "P1"
        lines = _priority_lines(where, escalated["id"])
        assert lines[-1]["data"]["priority"] == "P1", lines
        assert "→ P1 (escalated to a human): " in lines[-1]["detail"], lines
