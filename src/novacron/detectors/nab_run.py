"""Running a detector over a recorded series and mapping its scores into [0, 1] for NAB."""

from __future__ import annotations

import numpy as np

from novacron.detectors.base import Detector, FloatArray

__all__ = ["squash", "unit_scores"]


def squash(score: float | FloatArray) -> FloatArray:
    """Monotone map of a non-negative score onto [0, 1): ``s / (1 + s)``.

    Monotone, so the corpus-optimal threshold finds the same detections as on raw scores,
    and a detector's own threshold ``t`` maps to ``t / (1 + t)``.
    """
    s = np.maximum(np.asarray(score, dtype=np.float64), 0.0)
    return np.asarray(s / (1.0 + s), dtype=np.float64)


def unit_scores(detector: Detector, values: FloatArray, *, streaming: bool = False) -> tuple[FloatArray, float]:
    """Scores in [0, 1] for every row (score then learn, in order) and the matching threshold.

    By default ``score_many`` is used for speed; the conformance suite holds it equal to
    the streaming ``score_one``/``learn_one`` loop (``streaming=True``), so either way no
    row sees its own future.
    """
    if streaming:
        raw = np.empty(values.shape[0])
        for i, x in enumerate(values.tolist()):
            raw[i] = detector.score_one(x)
            detector.learn_one(x)
    else:
        raw = detector.score_many(values)
    threshold = detector.default_threshold
    if detector.unit_interval:
        return np.clip(raw, 0.0, 1.0), float(threshold)
    return squash(raw), float(squash(threshold))
