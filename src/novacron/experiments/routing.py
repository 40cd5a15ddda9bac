"""Load-balancer weights for a split, and the share those integer weights really give.

HAProxy weights are integers in 0..256 per server, so a 1 % split beside three replicas
rounds; the canary's real share (what the sample-ratio check must expect) is computed
from the weights, not the split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["share_of", "weights_for", "weights_for_shares"]

_MAX = 256


def weights_for(split: float, replicas: Sequence[str], variant: str) -> dict[str, int]:
    """Weights sending ``split`` % of requests to ``variant`` and the rest evenly to ``replicas``."""
    if not 0 <= split <= 100:
        raise ValueError(f"split must lie in 0..100 (got {split})")
    if not replicas:
        raise ValueError("need at least one replica")
    if split >= 100:
        return {**dict.fromkeys(replicas, 0), variant: _MAX}
    if split <= 0:
        return {**dict.fromkeys(replicas, 100), variant: 0}
    each = (100.0 - split) / len(replicas)
    scale = _MAX / max(each, split)
    return {**dict.fromkeys(replicas, max(1, round(each * scale))), variant: max(1, round(split * scale))}


def share_of(weights: Mapping[str, int], variant: str) -> float:
    """The variant's share of traffic, in percent, under ``weights``."""
    total = sum(weights.values())
    return 100.0 * weights.get(variant, 0) / total if total else 0.0


def weights_for_shares(baseline: float, variants: Mapping[str, float], replicas: Sequence[str]) -> dict[str, int]:
    """Weights giving the baseline's replicas ``baseline`` and each variant server its share (any positive scale)."""
    if not replicas:
        raise ValueError("need at least one replica")
    parts = {**dict.fromkeys(replicas, baseline / len(replicas)), **variants}
    top = max(parts.values())
    if top <= 0:
        raise ValueError("at least one share must be positive")
    return {server: (max(1, round(share * _MAX / top)) if share > 0 else 0) for server, share in parts.items()}
