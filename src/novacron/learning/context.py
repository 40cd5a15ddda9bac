"""What a policy knows about a fault when it picks the next step, and its feature vector.

The context is what the controller can tell at decision time: the fault's kind, the class
of the failing observation (refused, no answer, an error status, an upstream's error), whether
something it depends on is failing too (the root-cause step's evidence), how often the
target was acted on in the last hour, the priority, and which steps this incident already
tried. Features are one-hot blocks plus a bias, so a linear model per action can tell the
contexts apart without any hand-made rule.

A hung service, a service starved by a noisy neighbour and one on a failed host all look
alike from their own probes (no answer, nothing upstream failing). What tells them apart
is evidence from around the target: whether its answers slowed down before it went silent
(:func:`answers_slowed`), the state of its host (:func:`host_state`: busy, down, or fine)
and whether other targets on the same host are failing too.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = [
    "ACTIONS",
    "DETAIL_CLASSES",
    "FAULT_KINDS",
    "HOST_STATES",
    "FaultContext",
    "answers_slowed",
    "detail_class",
    "features",
    "host_state",
    "n_features",
]

FAULT_KINDS = (
    "crash", "hang", "unhealthy", "heartbeat_lost", "start_failed", "metric_anomaly", "predicted", "alert",
)  # fmt: skip
DETAIL_CLASSES = ("refused", "no_answer", "upstream", "bad_config", "server_error", "exited", "other")
# Every step a policy may be asked about; a tried step is a feature (what failed already).
ACTIONS = ("restart", "replace", "wait", "config_rollback", "cleanup", "scale_out", "reallocate", "drain")
_RESTART_BUCKETS = 3  # 0, 1, 2+ actions on the target in the last hour
# The target's host: "busy" (CPU saturated), "down" (its metrics do not answer), "ok", or
# "unknown" (no host evidence for this kind of target).
HOST_STATES = ("ok", "busy", "down", "unknown")
_BUSY = 0.9  # CPU utilisation from which a host counts as saturated
_SLOWER = 3.0  # the last answer this many times the earlier median is a slowdown…
_SLOWER_BY_S = 0.02  # …and at least this much slower (a fast service's jitter is not one)
_MIN_ANSWERS = 4  # earlier answers needed for a median to compare with


def answers_slowed(answers: Sequence[float]) -> bool:
    """Whether the last healthy answer (seconds) was markedly slower than the ones before.

    A service starved of CPU answers ever more slowly before its probes time out; a hung
    one goes silent from normal answer times.
    """
    if len(answers) < _MIN_ANSWERS + 1:
        return False
    base = statistics.median(answers[:-1])
    last = answers[-1]
    return last >= _SLOWER * base and last - base >= _SLOWER_BY_S


def host_state(load: float | None, *, known: bool = True) -> str:
    """The host's state from its CPU utilisation (0..1); ``None``: its metrics do not answer."""
    if not known:
        return "unknown"
    if load is None:
        return "down"
    return "busy" if load >= _BUSY else "ok"


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
    slowed: bool = False  # its answers slowed down before it went silent
    host: str = "unknown"  # one of HOST_STATES
    peers_failing: bool = False  # another target on its host (outside its dependency chain) fails too

    def to_dict(self) -> dict[str, object]:
        """JSON-ready (for the decision log)."""
        return {
            "kind": self.kind,
            "detail": self.detail,
            "upstream_failing": self.upstream_failing,
            "recent_actions": self.recent_actions,
            "priority": self.priority,
            "tried": list(self.tried),
            "slowed": self.slowed,
            "host": self.host,
            "peers_failing": self.peers_failing,
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
            slowed=bool(data.get("slowed", False)),
            host=str(data.get("host", "unknown")),
            peers_failing=bool(data.get("peers_failing", False)),
        )


def n_features() -> int:
    """Length of :func:`features`' vector."""
    return 1 + len(FAULT_KINDS) + len(DETAIL_CLASSES) + 1 + _RESTART_BUCKETS + len(ACTIONS) + 2 + len(HOST_STATES)


def features(ctx: FaultContext) -> npt.NDArray[np.float64]:
    """Bias, kind, detail class, upstream failing, recent-action bucket, steps tried, host evidence."""
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
    at += len(ACTIONS)
    x[at] = float(ctx.slowed)
    x[at + 1] = float(ctx.peers_failing)
    at += 2
    x[at + HOST_STATES.index(ctx.host if ctx.host in HOST_STATES else "unknown")] = 1.0
    return x
