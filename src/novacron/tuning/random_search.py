"""Random search: the baseline every model-based optimiser must beat at the same budget."""

from __future__ import annotations

from typing import Any

import numpy as np

from novacron.tuning.trial import AskTell

__all__ = ["RandomSearch"]


class RandomSearch(AskTell):
    """Uniform draws from the unit cube; trial ``n`` depends only on the seed and ``n`` (resumable)."""

    def _propose(self, number: int) -> dict[str, Any]:
        return self.space.sample(np.random.default_rng([self.seed, number]))
