"""What a policy knows about a fault when it picks the next step, and its feature vector.

The context is what the controller can tell at decision time: the fault's kind, the class
of the failing observation (refused, no answer, an error status, an upstream's error), whether
something it depends on is failing too (the root-cause step's evidence), how often the
target was acted on in the last hour, the priority, and which steps this incident already
tried. Features are one-hot blocks plus a bias, so a linear model per action can tell the
contexts apart without any hand-made rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = ["ACTIONS", "DETAIL_CLASSES", "FAULT_KINDS", "FaultContext", "detail_class", "features", "n_features"]

FAULT_KINDS = (
    "crash", "hang", "unhealthy", "heartbeat_lost", "start_failed", "metric_anomaly", "predicted", "alert",
)  # fmt: skip
DETAIL_CLASSES = ("refused", "no_answer", "upstream", "bad_config", "server_error", "exited", "other")
# Every step a policy may be asked about; a tried step is a feature (what failed already).
ACTIONS = ("restart", "replace", "wait", "config_rollback", "cleanup", "scale_out", "reallocate", "drain")
_RESTART_BUCKETS = 3  # 0, 1, 2+ actions on the target in the last hour


def detail_class(detail: str) -> str:
    """The class of a failing observation's detail text (a probe's error, an exit)."""
    text = detail.lower()
    if "upstream" in text or "502" in text:
        return "upstream"
    if "bad config" in text or "503" in text:
        return "bad_config"
    if "refused" in text:
        return "refused"
    if "timeout" in text or "no answer" in text or "timed out" in text:
        return "no_answer"
    if "exit" in text or "signal" in text:
        return "exited"
    if "500" in text or "http 5" in text:
        return "server_error"
    return "other"


@dataclass(frozen=True, slots=True)
class FaultContext:
    """The decision-time view of one incident."""

    kind: str
    detail: str = "other"  # one of DETAIL_CLASSES
    upstream_failing: bool = False
    recent_actions: int = 0
    priority: int = 3  # P0 = 0 … P4 = 4
    tried: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready (for the decision log)."""
        return {
            "kind": self.kind,
            "detail": self.detail,
            "upstream_failing": self.upstream_failing,
            "recent_actions": self.recent_actions,
            "priority": self.priority,
            "tried": list(self.tried),
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> FaultContext:
        """Back from :meth:`to_dict`."""
        tried = data.get("tried") or []
        assert isinstance(tried, list)
        return cls(
            kind=str(data.get("kind", "")),
            detail=str(data.get("detail", "other")),
            upstream_failing=bool(data.get("upstream_failing", False)),
            recent_actions=int(str(data.get("recent_actions", 0))),
            priority=int(str(data.get("priority", 3))),
            tried=tuple(str(t) for t in tried),
        )


def n_features() -> int:
    """Length of :func:`features`' vector."""
    return 1 + len(FAULT_KINDS) + len(DETAIL_CLASSES) + 1 + _RESTART_BUCKETS + len(ACTIONS)


def features(ctx: FaultContext) -> npt.NDArray[np.float64]:
    """Bias, kind, detail class, upstream failing, recent-action bucket, steps tried."""
    x = np.zeros(n_features())
    x[0] = 1.0
    at = 1
    if ctx.kind in FAULT_KINDS:
        x[at + FAULT_KINDS.index(ctx.kind)] = 1.0
    at += len(FAULT_KINDS)
    x[at + DETAIL_CLASSES.index(ctx.detail if ctx.detail in DETAIL_CLASSES else "other")] = 1.0
    at += len(DETAIL_CLASSES)
    x[at] = float(ctx.upstream_failing)
    at += 1
    x[at + min(ctx.recent_actions, _RESTART_BUCKETS - 1)] = 1.0
    at += _RESTART_BUCKETS
    for step in ctx.tried:
        if step in ACTIONS:
            x[at + ACTIONS.index(step)] = 1.0
    return x
