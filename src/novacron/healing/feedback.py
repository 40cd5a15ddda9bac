"""An operator's good/bad mark on an action: kept, audited, and learned from.

The mark is stored whatever chose the action (a human's own action, an agent's, the
ladder's); when a learning policy chose it, the policy learns from it at once: the
decision's reward plus or minus the feedback weight, so the next choice in the same
context moves away from a bad step or towards a good one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from novacron.errors import InputError
from novacron.store import Store
from novacron.store.learning import PolicyLog

if TYPE_CHECKING:
    from novacron.healing.learned import LearnedSteps

__all__ = ["VERDICTS", "record_feedback"]

VERDICTS = ("good", "bad")


def record_feedback(
    store: Store,
    chooser: LearnedSteps | None,
    action_id: str,
    verdict: str,
    *,
    actor: str,
    note: str,
    now: float,
) -> bool:
    """Keep and audit the mark; True when a learning policy learned from it.

    An unknown action is :class:`~novacron.errors.NotFoundError` and nothing is written.
    """
    if verdict not in VERDICTS:
        raise InputError(f"must be good or bad, got {verdict!r}", where="verdict")
    PolicyLog(store).add_feedback(action_id, verdict, actor=actor, note=note, now=now)
    learned = chooser is not None and chooser.feedback(action_id, verdict)
    store.audit(
        now=now,
        actor=actor,
        verb="action.feedback",
        subject=action_id,
        result=verdict,
        note=note,
        learned=learned,
    )
    return learned
