"""The detector contract and the registry detectors plug into.

A detector follows river's shape: ``learn_one(x)`` updates state, ``score_one(x)`` returns
how anomalous ``x`` is (higher = more anomalous, never NaN) without learning it, and
``score_many(xs)`` does "score, then learn" over a whole array at once. ``__init__`` only
stores parameters (so ``get_params``/``clone`` work like scikit-learn's); state is built on
first use. Missing values (NaN, inf) score 0 and are not learned: a gap is not evidence.
"""

from __future__ import annotations

import copy
import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from novacron.errors import InputError

__all__ = [
    "REGISTRY",
    "Detector",
    "FloatArray",
    "RefitChunks",
    "Registry",
    "clip_value",
    "register",
    "sanitize_batch",
]

FloatArray = npt.NDArray[np.float64]

# Inputs are clipped to this magnitude so squares and sums stay finite in float64:
# (1e100)^2 = 1e200 is still far from overflow, and no real metric comes near it.
VALUE_LIMIT = 1e100
# Scores are capped so downstream arithmetic (sums, likelihoods) never meets inf.
SCORE_LIMIT = 1e12


def clip_value(x: float) -> float:
    """Clip a finite value into the range the detectors compute safely in."""
    if x > VALUE_LIMIT:
        return VALUE_LIMIT
    if x < -VALUE_LIMIT:
        return -VALUE_LIMIT
    return x


def sanitize_batch(xs: npt.ArrayLike) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Return ``(clipped values, finite mask)`` for a batch; non-finite entries become 0."""
    arr = np.asarray(xs, dtype=np.float64).reshape(-1)
    ok = np.isfinite(arr)
    clipped = np.clip(arr, -VALUE_LIMIT, VALUE_LIMIT)
    if ok.all():  # the usual batch: no third pass over it
        return clipped, ok
    return np.where(ok, clipped, 0.0), ok


def finish_scores(scores: FloatArray) -> FloatArray:
    """Make scores safe to hand out: no NaN, no inf, never negative."""
    out = np.nan_to_num(scores, nan=0.0, posinf=SCORE_LIMIT, neginf=0.0)
    return np.clip(out, 0.0, SCORE_LIMIT)


def finish_score(score: float) -> float:
    """Scalar twin of :func:`finish_scores`."""
    if math.isnan(score) or score < 0.0:
        return 0.0
    return min(score, SCORE_LIMIT)


class Detector(ABC):
    """Base class for streaming detectors; subclasses implement the three methods below.

    ``default_threshold`` is the score at or above which the detector's own authors would
    call a point anomalous; the decision wrapper uses it unless told otherwise.
    """

    default_threshold: float = 3.0
    # True when scores already lie in [0, 1] (probabilities, likelihoods, forest scores).
    unit_interval: bool = False

    @abstractmethod
    def learn_one(self, x: float) -> None:
        """Update the state with one observation (non-finite values are ignored)."""

    @abstractmethod
    def score_one(self, x: float) -> float:
        """How anomalous ``x`` is given what has been learned so far; never NaN."""

    def score_many(self, xs: npt.ArrayLike) -> FloatArray:
        """Score then learn each value in order; equals the streaming loop's scores."""
        arr = np.asarray(xs, dtype=np.float64).reshape(-1)
        out = np.empty(arr.shape[0], dtype=np.float64)
        score, learn = self.score_one, self.learn_one
        for i, x in enumerate(arr.tolist()):
            out[i] = score(x)
            learn(x)
        return out

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments this detector was built with."""
        sig = inspect.signature(type(self).__init__)
        return {
            name: getattr(self, name)
            for name, p in sig.parameters.items()
            if name != "self" and p.kind is p.KEYWORD_ONLY
        }

    def clone(self, **overrides: Any) -> Detector:
        """A fresh, untrained detector with the same parameters (nested ones cloned too)."""
        params = {k: _clone_value(v) for k, v in self.get_params().items()}
        params.update(overrides)
        return type(self)(**params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


class RefitChunks(ABC):
    """``score_many`` for detectors that refit periodically (Isolation Forest, LSTM).

    The values between two refits score against one fitted model, so a batch is handled
    chunk by chunk: ``_chunk(good, i, scores)`` scores and learns ``good[i:j]`` up to the
    next refit and returns ``j``. Non-finite values score 0 and are not learned.
    """

    @abstractmethod
    def _chunk(self, good: FloatArray, i: int, scores: FloatArray) -> int:
        """Score and learn ``good[i:j]`` (up to the next refit) into ``scores``; return ``j``."""

    def score_many(self, xs: npt.ArrayLike) -> FloatArray:
        """Score-then-learn over ``xs``, one model call per chunk between refits."""
        vals, ok = sanitize_batch(xs)
        good = vals[ok]
        scores = np.zeros(good.shape[0])
        i = 0
        while i < good.shape[0]:
            i = self._chunk(good, i, scores)
        out = np.zeros(vals.shape[0])
        out[ok] = scores
        return finish_scores(out)


def _clone_value(v: Any) -> Any:
    if isinstance(v, Detector):
        return v.clone()
    if isinstance(v, tuple | list):
        return type(v)(_clone_value(i) for i in v)
    return copy.deepcopy(v)


D = TypeVar("D", bound=type[Detector])


class Registry(Mapping[str, type[Detector]]):
    """Name → detector class; pass one in to isolate plugins (tests), or use REGISTRY."""

    def __init__(self) -> None:
        self._classes: dict[str, type[Detector]] = {}

    def register(self, name: str) -> Callable[[D], D]:
        """Class decorator registering a detector under ``name``."""

        def deco(cls: D) -> D:
            if name in self._classes and self._classes[name] is not cls:
                raise InputError(f"detector name {name!r} is already registered", where="registry")
            self._classes[name] = cls
            return cls

        return deco

    def create(self, name: str, **params: Any) -> Detector:
        """Build detector ``name`` with ``params``; unknown names/params raise InputError."""
        cls = self._classes.get(name)
        if cls is None:
            known = ", ".join(sorted(self._classes))
            raise InputError(f"unknown detector {name!r} (known: {known})", where="detector")
        allowed = set(inspect.signature(cls.__init__).parameters) - {"self"}
        for key in params:
            if key not in allowed:
                raise InputError(
                    f"unknown parameter {key!r} for detector {name!r} (allowed: {', '.join(sorted(allowed))})",
                    where=f"detector.{name}",
                )
        try:
            return cls(**params)
        except (TypeError, ValueError) as exc:
            raise InputError(str(exc), where=f"detector.{name}") from exc

    def __getitem__(self, name: str) -> type[Detector]:
        return self._classes[name]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._classes))

    def __len__(self) -> int:
        return len(self._classes)


REGISTRY = Registry()
register = REGISTRY.register


def check_positive(name: str, value: float) -> None:
    """Constructor guard: a parameter that must be > 0."""
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise InputError(f"must be a positive number, got {value!r}", where=name)


def check_fraction(name: str, value: float) -> None:
    """Constructor guard: a parameter in (0, 1]."""
    if not (isinstance(value, int | float) and 0.0 < value <= 1.0):
        raise InputError(f"must be in (0, 1], got {value!r}", where=name)
