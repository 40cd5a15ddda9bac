"""Probe timeouts that adapt to each target's own response times.

A fixed probe timeout must be long enough for the slowest healthy answer of every target,
so a stopped process is only noticed ``failures × timeout`` after it stops. A target that
normally answers in 2 ms is, after 40 ms of silence, already far outside anything it has
done. :class:`AdaptiveTimeout` keeps the last ``window`` successful response times and
sets the timeout to ``factor ×`` their ``quantile`` (the 95th percentile by default),
never below ``floor_s`` and never above the spec's ``timeout_s`` (the ceiling). Until
``min_samples`` answers are known, the ceiling applies.

Such a short timeout is a *suspicion*, not a verdict: the prober then sends a second,
fresh probe beside the first (which stays open) and gives it a deadline of its own,
:meth:`confirm_timeout` (``confirm_factor × factor ×`` their ``confirm_quantile``, the
99th percentile: a fresh request to a live target is all but sure to be answered by
then, while the suspicion may be tighter because it costs only that second probe). The
target is failed only if neither probe answers: after :meth:`silence_span`, the
suspicion plus the confirmation, and never more than ``failures ×`` the spec's timeout
(the fixed rule it replaces). One slow answer (a lost request, one slow handler) is settled by the fresh
probe; a stopped process answers neither. Slow answers that do arrive are learned, so a
target whose latency shifts upwards (load, a colder cache) earns longer timeouts within
a few dozen probes.

The response times learned are the target's, not the controller's: the prober subtracts
the time its own event loop was blocked (:mod:`novacron.sensors.looplag`) from each
answer's latency and from every deadline, so a stall of the controller is neither taken
for a slow target nor counted as its silence. That is why the span can be a few
latency quantiles rather than a multiple of the slowest answer ever seen.
"""

from __future__ import annotations

import math
from collections import deque

from novacron.errors import InputError

__all__ = ["AdaptiveTimeout"]

# Recomputing a quantile on every probe would cost more than the probe; every few answers
# is enough for a distribution that moves over dozens of them. Plain Python on purpose:
# the prober must not pull numpy into a controller that watches no metrics.
_REFRESH_EVERY = 8


def _quantile(ordered: list[float], q: float) -> float:
    """Linear-interpolated quantile of sorted values (numpy's default method)."""
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


class AdaptiveTimeout:
    """Per-check timeout from the check's own recent latencies, bounded by the spec."""

    def __init__(
        self,
        *,
        ceiling_s: float,
        floor_s: float = 0.03,
        quantile: float = 0.95,
        confirm_quantile: float = 0.99,
        factor: float = 3.0,
        confirm_factor: float = 1.0,
        window: int = 256,
        min_samples: int = 20,
    ) -> None:
        for name, v in (("ceiling_s", ceiling_s), ("floor_s", floor_s), ("factor", factor)):
            if not (math.isfinite(v) and v > 0):
                raise InputError(f"must be a positive number, got {v!r}", where=name)
        for name, q in (("quantile", quantile), ("confirm_quantile", confirm_quantile)):
            if not 0.0 < q < 1.0:
                raise InputError(f"must be in (0, 1), got {q!r}", where=name)
        if confirm_factor < 1.0:
            raise InputError(f"must be >= 1, got {confirm_factor!r}", where="confirm_factor")
        if window < 1 or min_samples < 1:
            raise InputError("window and min_samples must be >= 1", where="window")
        self.ceiling_s = ceiling_s
        self.floor_s = min(floor_s, ceiling_s)
        self.quantile = quantile
        self.confirm_quantile = confirm_quantile
        self.factor = factor
        self.confirm_factor = confirm_factor
        self.min_samples = min_samples
        self._latencies: deque[float] = deque(maxlen=window)
        self._since_refresh = 0
        self._timeout = ceiling_s
        self._confirm = ceiling_s

    def observe(self, latency_s: float) -> None:
        """Learn the response time of one successful probe."""
        if not (math.isfinite(latency_s) and latency_s >= 0.0):
            return
        self._latencies.append(latency_s)
        self._since_refresh += 1
        if len(self._latencies) >= self.min_samples and (
            self._since_refresh >= _REFRESH_EVERY or len(self._latencies) == self.min_samples
        ):
            ordered = sorted(self._latencies)
            self._timeout = self._bounded(self.factor * _quantile(ordered, self.quantile))
            confirm = self.confirm_factor * self.factor * _quantile(ordered, self.confirm_quantile)
            self._confirm = max(self._timeout, self._bounded(confirm))
            self._since_refresh = 0

    def _bounded(self, seconds: float) -> float:
        return min(self.ceiling_s, max(self.floor_s, seconds))

    def timeout(self) -> float:
        """The timeout for the next regular probe."""
        return self._timeout

    def confirm_timeout(self) -> float:
        """The deadline of the fresh probe that confirms a suspicion, from when it is sent."""
        return self._confirm

    def silence_span(self, failures: int = 2) -> float:
        """How long a target must stay silent, from the suspected probe on, to be failed.

        The suspicion plus the confirmation, and never more than the rule it replaces,
        ``failures ×`` the spec's timeout.
        """
        return min(max(1, failures) * self.ceiling_s, self._timeout + self._confirm)

    @property
    def adaptive(self) -> bool:
        """Whether the timeout is (now) below the ceiling, so a timeout is only a suspicion."""
        return self._timeout < self.ceiling_s

    def latency_quantile(self, q: float) -> float | None:
        """The ``q`` quantile of the remembered response times (None before the first answer)."""
        if not self._latencies:
            return None
        return _quantile(sorted(self._latencies), q)

    @property
    def samples(self) -> int:
        """How many response times are remembered."""
        return len(self._latencies)
