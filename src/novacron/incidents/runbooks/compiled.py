"""YAML runbooks compiled to the generator contract.

Each step yields one action; the outcome that comes back is judged by the step: the
action must report ``ok``, finish within the step's ``timeout_s`` and pass its ``check``.
On success the runbook moves to ``goto`` (or the next step); on failure it follows
``on_failure``: ``next`` tries the following step, ``escalate`` yields an ESCALATE action
and stops, ``rollback`` yields the inverse of every step that already succeeded, newest
first, and stops. Load-time validation has ruled out cycles, so every run terminates.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any

from novacron.incidents.runbooks.contract import RunbookContext, RunbookGenerator, RunbookResult
from novacron.incidents.runbooks.spec import DEFAULT_RISK, END, RunbookSpec, StepSpec
from novacron.model import Action, ActionKind, Incident, Outcome

__all__ = ["INVERSE", "YamlRunbook", "judge"]

INVERSE: Mapping[ActionKind, ActionKind] = {
    ActionKind.START: ActionKind.STOP,
    ActionKind.STOP: ActionKind.START,
    ActionKind.SCALE_OUT: ActionKind.SCALE_IN,
    ActionKind.SCALE_IN: ActionKind.SCALE_OUT,
}
"""Default inverses; restart, replace, cleanup, config rollback and escalate have none."""


def judge(step: StepSpec, outcome: Outcome) -> list[str]:
    """Why ``outcome`` fails ``step`` (empty when the step succeeded)."""
    if not outcome.ok:
        return [f"action failed: {outcome.detail or 'no detail'}"]
    took = outcome.finished_at - outcome.started_at
    if took > step.timeout_s:
        return [f"took {took:.1f}s, over the step's timeout of {step.timeout_s:g}s"]
    return step.check.failures(outcome.data)


@dataclass(frozen=True)
class YamlRunbook:
    """A validated :class:`RunbookSpec` that runs as a generator."""

    spec: RunbookSpec

    @property
    def name(self) -> str:
        """The runbook's name from its spec."""
        return self.spec.name

    @property
    def description(self) -> str:
        """The runbook's description from its spec."""
        return self.spec.description

    def matches(self, incident: Incident, labels: Mapping[str, str]) -> bool:
        """Match by fault kind and target label patterns."""
        return self.spec.match.matches(incident.kind, labels)

    def start(self, ctx: RunbookContext) -> RunbookGenerator:
        """A generator over this runbook's steps."""
        return self._run(ctx.for_runbook(self.name))

    def _action(self, ctx: RunbookContext, step: StepSpec) -> Action:
        params: dict[str, Any] = {k: _fill(ctx, v) for k, v in step.params.items()}
        params["timeout_s"] = step.timeout_s
        check = step.check.model_dump(exclude_defaults=True)
        if check:
            params["check"] = check
        return ctx.action(
            step.action, step=step.name, risk=step.risk_level(), target=ctx.fill(step.target), params=params
        )

    def _run(self, ctx: RunbookContext) -> RunbookGenerator:
        steps = self.spec.steps
        done: list[tuple[StepSpec, Action]] = []
        executed: list[str] = []
        failed: list[str] = []
        i = 0
        while i < len(steps):
            step = steps[i]
            action = self._action(ctx, step)
            outcome = yield action
            executed.append(step.name)
            problems = judge(step, outcome)
            if not problems:
                done.append((step, action))
                if step.goto == END:
                    break
                i = self.spec.index(step.goto) if step.goto else i + 1
                continue
            failed.append(step.name)
            why = f"step '{step.name}': {'; '.join(problems)}"
            if step.on_failure == "next" and i + 1 < len(steps):
                i += 1
                continue
            if step.on_failure == "rollback":
                undo_failed = yield from self._rollback(ctx, done)
                if undo_failed:
                    why += f"; rollback failed for {', '.join(undo_failed)}"
                return RunbookResult("rolled_back", tuple(executed), tuple(failed), why)
            if step.on_failure == "escalate":
                yield ctx.action(ActionKind.ESCALATE, step=step.name, params={"reason": why}, reason=why)
                return RunbookResult("escalated", tuple(executed), tuple(failed), why)
            return RunbookResult("failed", tuple(executed), tuple(failed), why)
        return RunbookResult("succeeded", tuple(executed), tuple(failed))

    def _rollback(
        self, ctx: RunbookContext, done: list[tuple[StepSpec, Action]]
    ) -> Generator[Action, Outcome, list[str]]:
        """Undo succeeded steps newest first; returns the steps whose undo failed (not retried)."""
        undo_failed: list[str] = []
        for step, action in reversed(done):
            if step.rollback is not None:
                kind = step.rollback.action
                params = {k: _fill(ctx, v) for k, v in step.rollback.params.items()}
            elif step.action in INVERSE:
                # The forward step's check describes the forward state, so it is not carried over.
                kind = INVERSE[step.action]
                params = {k: v for k, v in action.params.items() if k not in {"step", "runbook", "check"}}
            else:
                continue
            outcome = yield ctx.action(
                kind,
                step=f"{step.name}.rollback",
                risk=DEFAULT_RISK[kind],
                target=action.target,
                params=params,
                inverse_of=action.id,
            )
            if not outcome.ok:
                undo_failed.append(step.name)
        return undo_failed


def _fill(ctx: RunbookContext, value: Any) -> Any:
    """Fill ``{target}``/``{incident}`` in string parameters, recursively."""
    if isinstance(value, str):
        return ctx.fill(value)
    if isinstance(value, list):
        return [_fill(ctx, v) for v in value]
    if isinstance(value, dict):
        return {k: _fill(ctx, v) for k, v in value.items()}
    return value
