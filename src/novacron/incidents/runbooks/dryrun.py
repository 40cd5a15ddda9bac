"""Dry-run: drive a runbook without acting, to show what it would do.

By default every action is assumed to succeed, with outcome data that passes the step's
``check``; a list of outcomes (booleans or full :class:`Outcome` records) replays a
specific story instead, e.g. ``[False, True]`` for "the first step fails, the next
works". Works for YAML and Python runbooks alike because both speak the same contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from novacron.errors import InputError
from novacron.incidents.runbooks.contract import Runbook, RunbookContext, RunbookResult
from novacron.model import Action, Outcome

__all__ = ["DryRun", "PlannedStep", "dry_run"]


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """One action the runbook would take, and the outcome it was fed."""

    action: Action
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class DryRun:
    """The planned steps in order and how the runbook would end."""

    steps: tuple[PlannedStep, ...]
    result: RunbookResult

    @property
    def actions(self) -> tuple[Action, ...]:
        """Just the planned actions."""
        return tuple(s.action for s in self.steps)


def _assumed(action: Action, given: bool | Outcome | None, at: float) -> Outcome:
    if isinstance(given, Outcome):
        return given
    ok = True if given is None else given
    check = action.params.get("check")
    data = _passing_data(check) if ok and isinstance(check, dict) else {}
    detail = "dry-run: assumed success" if ok else "dry-run: assumed failure"
    return Outcome(action_id=action.id, ok=ok, started_at=at, finished_at=at, detail=detail, data=data)


def _passing_data(check: dict[str, dict[str, object]]) -> dict[str, object]:
    data: dict[str, object] = {}
    for part in ("at_most", "at_least", "expect"):
        data.update(check.get(part, {}))
    return data


def dry_run(
    runbook: Runbook,
    ctx: RunbookContext,
    outcomes: Sequence[bool | Outcome] = (),
    *,
    max_steps: int = 1000,
) -> DryRun:
    """Walk ``runbook`` for ``ctx``'s incident and return the actions it would take.

    Outcomes beyond the given list are assumed successful. A runbook that asks for more
    than ``max_steps`` actions is reported as an error rather than looped on forever.
    """
    gen = runbook.start(ctx)
    at = ctx.incident.opened_at
    planned: list[PlannedStep] = []
    try:
        action = next(gen)
        while True:
            if len(planned) >= max_steps:
                gen.close()
                raise InputError(f"runbook asked for more than {max_steps} actions", where=runbook.name)
            given = outcomes[len(planned)] if len(planned) < len(outcomes) else None
            outcome = _assumed(action, given, at)
            planned.append(PlannedStep(action, outcome))
            action = gen.send(outcome)
    except StopIteration as stop:
        value = stop.value
        executed = tuple(str(s.action.params.get("step", "")) for s in planned)
        result = value if isinstance(value, RunbookResult) else RunbookResult("succeeded", executed)
        return DryRun(tuple(planned), result)
