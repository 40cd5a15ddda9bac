"""The runbook contract: a generator that yields Actions and receives Outcomes.

The executor drives every runbook the same way, whether it came from YAML or Python and
whether it acts on real systems, the twin or a test fake::

    gen = runbook.start(ctx)
    action = next(gen)
    while True:
        outcome = await executor.run(action)      # safety gate, apply, verify
        try:
            action = gen.send(outcome)
        except StopIteration as stop:
            result = stop.value                   # RunbookResult (or None: succeeded)
            break

A runbook never performs I/O itself; it only decides the next action from the outcomes it
has seen, which is what makes dry-runs and simulation exact.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from novacron.model import EMPTY, Action, ActionId, ActionKind, Incident, Outcome, RiskLevel, TargetId

__all__ = [
    "PythonRunbook",
    "Runbook",
    "RunbookContext",
    "RunbookFunction",
    "RunbookGenerator",
    "RunbookResult",
    "RunbookStatus",
]

RunbookStatus = Literal["succeeded", "failed", "rolled_back", "escalated"]


@dataclass(frozen=True, slots=True)
class RunbookResult:
    """How a runbook run ended, and which steps ran / failed along the way."""

    status: RunbookStatus
    executed: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    detail: str = ""


RunbookGenerator = Generator[Action, Outcome, RunbookResult | None]
"""What :meth:`Runbook.start` returns; returning ``None`` means ``succeeded``."""


@dataclass(frozen=True)
class RunbookContext:
    """What a runbook knows when it starts: the incident and its target's labels.

    :meth:`action` builds actions with ids and idempotency keys that are deterministic
    per incident, runbook and position, the key in the ladder's form
    ``<incident>/runbook/<runbook>/<n>/<step>`` (the id ``act-`` and 12 hex digits of its hash):
    a runbook re-driven after a controller restart repeats the same keys, so the executor
    replays the steps that finished and reconciles the one in flight instead of applying
    any of them twice. ``run`` names a
    later run on the same incident (automation resumed after the kill switch), whose keys
    are its own (``<incident>/<run>/runbook/...``) so its steps act instead of replaying
    the first run's.
    """

    incident: Incident
    labels: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    runbook: str = "runbook"
    run: str = ""
    _seq: Iterator[int] = field(default_factory=lambda: itertools.count(1), repr=False, compare=False)

    def for_runbook(self, name: str) -> RunbookContext:
        """A fresh context for the runbook called ``name`` (restarts the action sequence)."""
        return RunbookContext(incident=self.incident, labels=self.labels, runbook=name, run=self.run)

    def fill(self, text: str) -> str:
        """Replace ``{target}`` and ``{incident}`` in a template string."""
        return text.replace("{target}", self.incident.target).replace("{incident}", self.incident.id)

    def action(
        self,
        kind: ActionKind,
        *,
        step: str,
        risk: RiskLevel = RiskLevel.LOW,
        target: str | None = None,
        params: Mapping[str, Any] | None = None,
        reason: str = "",
        inverse_of: ActionId | None = None,
    ) -> Action:
        """A new action for this incident, tagged with the runbook and step that asked for it."""
        run = [self.run] if self.run else []
        parts = [self.incident.id, *run, "runbook", self.runbook, str(next(self._seq)), step]
        key = "/".join(parts)
        full = {**(params or {}), "runbook": self.runbook, "step": step}
        return Action(
            # As deterministic as the key (a rollback names its forward step by id), shaped like
            # every other action id: short for the 40-character id columns, safe in URL paths.
            id=ActionId("act-" + hashlib.sha256(key.encode()).hexdigest()[:12]),
            kind=kind,
            target=TargetId(target if target is not None else self.incident.target),
            risk=risk,
            idempotency_key=key,
            incident_id=self.incident.id,
            params=full,
            reason=reason or f"runbook {self.runbook}, step {step}",
            requested_by=f"runbook:{self.runbook}",
            inverse_of=inverse_of,
        )


@runtime_checkable
class Runbook(Protocol):
    """Anything the executor can drive: a name, a matcher and a generator factory."""

    @property
    def name(self) -> str:
        """Unique runbook name."""
        ...

    def matches(self, incident: Incident, labels: Mapping[str, str]) -> bool:
        """Whether this runbook applies to ``incident`` on a target with ``labels``."""
        ...

    def start(self, ctx: RunbookContext) -> RunbookGenerator:
        """A fresh generator for one run."""
        ...


RunbookFunction = Callable[[RunbookContext], RunbookGenerator]


@dataclass(frozen=True)
class PythonRunbook:
    """A plain generator function wrapped with a name and a matcher."""

    name: str
    func: RunbookFunction
    matcher: Callable[[Incident, Mapping[str, str]], bool] = field(default=lambda _i, _l: True)
    description: str = ""

    def matches(self, incident: Incident, labels: Mapping[str, str]) -> bool:
        """Delegate to the matcher given at registration."""
        return self.matcher(incident, labels)

    def start(self, ctx: RunbookContext) -> RunbookGenerator:
        """Call the function with a context named after this runbook."""
        return self.func(ctx.for_runbook(self.name))
