"""The advisor hook: something consulted before each automated ladder step, then held to account.

An :class:`Advisor` (the twin's what-if advisor, a learned policy, …) reviews a step
before the healer executes it. Its :class:`Review` may *veto* the step: the healer records
the step as failed without applying it and moves on to the next one. After a step that was
applied, :meth:`Advisor.settle` compares the review with what happened and returns
:class:`Hindsight` for the incident's timeline. The healer writes every review, veto and
comparison on the timeline under the advisor's :attr:`~Advisor.name`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from novacron.healing.executor import ExecResult
from novacron.model import Action, Incident

__all__ = ["Advisor", "Hindsight", "Review", "event_kind"]


class Review(Protocol):
    """An advisor's view of one step before it is applied."""

    @property
    def veto(self) -> bool:
        """Skip the step (it is recorded as failed, never applied)."""
        ...

    @property
    def reason(self) -> str:
        """One line for the timeline: why the step is expected to work or not."""
        ...

    def data(self) -> Mapping[str, Any]:
        """Structured detail for the timeline line."""
        ...


@dataclass(frozen=True, slots=True)
class Hindsight:
    """How a review compared with the step's real outcome (one timeline line)."""

    detail: str
    data: Mapping[str, Any]


R = TypeVar("R", bound=Review)


class Advisor(Protocol[R]):
    """Consulted by the healer around each automated ladder step."""

    @property
    def name(self) -> str:
        """Who advises, as the audit trail names it (``what-if``); timeline kinds derive from it."""
        ...

    def review(self, action: Action, incident: Incident) -> R | None:
        """Judge ``action`` before it runs; None when the advisor has nothing to say."""
        ...

    def settle(self, review: R, result: ExecResult, now: float) -> Hindsight:
        """Compare ``review`` with how the applied action ended."""
        ...


def event_kind(advisor_name: str, suffix: str = "") -> str:
    """The timeline kind of an advisor's line (``what-if`` + ``veto`` → ``what_if_veto``)."""
    base = advisor_name.replace("-", "_")  # timeline kinds are identifiers
    return f"{base}_{suffix}" if suffix else base
