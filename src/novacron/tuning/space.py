"""Search spaces: typed parameters mapped to and from the unit cube.

A :class:`Param` is a float, an integer, a log-scaled float or a categorical choice (for
example the order of a remediation ladder). Optimisers work in ``[0, 1]^d``; the space
encodes a configuration there and decodes a point back, rounding integers and picking the
nearest choice, so every optimiser sees the same geometry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from novacron.errors import InputError

__all__ = ["KINDS", "Param", "ParamKind", "SearchSpace"]

ParamKind = Literal["float", "int", "log", "categorical"]
KINDS: tuple[ParamKind, ...] = ("float", "int", "log", "categorical")
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Param:
    """One searched parameter: its name (a path), its kind and its bounds or choices."""

    name: str
    kind: ParamKind
    low: float = 0.0
    high: float = 1.0
    choices: tuple[Any, ...] = ()
    where: str = ""  # the field path an error names (defaults to the name)

    def __post_init__(self) -> None:
        where = self.where or self.name
        if self.kind not in KINDS:
            raise InputError(f"unknown kind {self.kind!r} (one of {', '.join(KINDS)})", where=f"{where}.kind")
        if self.kind == "categorical":
            if len(self.choices) < 1:
                raise InputError("a categorical parameter needs at least one choice", where=f"{where}.choices")
            return
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise InputError("bounds must be finite", where=f"{where}.bounds")
        if not self.low < self.high:
            raise InputError(f"bounds reversed or empty: low {self.low} >= high {self.high}", where=f"{where}.bounds")
        if self.kind == "log" and self.low <= 0:
            raise InputError(f"a log-scale parameter needs low > 0, got {self.low}", where=f"{where}.bounds")
        if self.kind == "int" and (self.low != round(self.low) or self.high != round(self.high)):
            raise InputError("an integer parameter needs integer bounds", where=f"{where}.bounds")

    def to_unit(self, value: Any) -> float:
        """Where ``value`` lies in ``[0, 1]``."""
        if self.kind == "categorical":
            index = self._index(value)
            return 0.5 if len(self.choices) == 1 else index / (len(self.choices) - 1)
        x = float(value)
        if self.kind == "log":
            u = (math.log(x) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        else:
            u = (x - self.low) / (self.high - self.low)
        return min(1.0, max(0.0, u))

    def from_unit(self, u: float) -> Any:
        """The value at ``u`` in ``[0, 1]`` (integers rounded, choices snapped)."""
        u = min(1.0, max(0.0, float(u)))
        if self.kind == "categorical":
            return self.choices[round(u * (len(self.choices) - 1))]
        if self.kind == "log":
            value = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
            return float(min(self.high, max(self.low, value)))  # exp(log(x)) may land a hair outside
        value = self.low + u * (self.high - self.low)
        return round(value) if self.kind == "int" else float(value)

    def snap_unit(self, u: FloatArray) -> FloatArray:
        """Unit coordinates moved onto this parameter's grid (integers, choices), vectorised."""
        u = np.clip(u, 0.0, 1.0)
        if self.kind == "categorical":
            n = len(self.choices)
            return np.full_like(u, 0.5) if n == 1 else np.round(u * (n - 1)) / (n - 1)
        if self.kind == "int":
            span = self.high - self.low
            return np.asarray((np.round(self.low + u * span) - self.low) / span, dtype=np.float64)
        return u

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a legal value of this parameter."""
        if self.kind == "categorical":
            return any(_same(value, c) for c in self.choices)
        try:
            x = float(value)
        except (TypeError, ValueError):
            return False
        return self.low - 1e-12 <= x <= self.high + 1e-12 and (self.kind != "int" or x == round(x))

    def _index(self, value: Any) -> int:
        for i, choice in enumerate(self.choices):
            if _same(value, choice):
                return i
        raise InputError(f"{value!r} is not one of the choices", where=self.where or self.name)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Sequence) and not isinstance(a, str) and isinstance(b, Sequence) and not isinstance(b, str):
        return list(a) == list(b)
    return bool(a == b)


@dataclass(frozen=True, slots=True)
class SearchSpace:
    """An ordered set of parameters with distinct names."""

    params: tuple[Param, ...]
    _names: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.params:
            raise InputError("a search space needs at least one parameter", where="params")
        names = tuple(p.name for p in self.params)
        seen: set[str] = set()
        for p in self.params:
            if p.name in seen:
                raise InputError(f"{p.name} is searched twice", where=p.where or p.name)
            seen.add(p.name)
        object.__setattr__(self, "_names", names)

    @property
    def names(self) -> tuple[str, ...]:
        """Parameter names in order."""
        return self._names

    @property
    def dims(self) -> int:
        """Number of dimensions of the unit cube."""
        return len(self.params)

    def decode(self, point: npt.ArrayLike) -> dict[str, Any]:
        """The configuration at a point of the unit cube."""
        arr = np.asarray(point, dtype=np.float64)
        if arr.shape != (self.dims,):
            raise InputError(f"expected a point of {self.dims} coordinates, got shape {arr.shape}", where="point")
        return {p.name: p.from_unit(float(u)) for p, u in zip(self.params, arr, strict=True)}

    def encode(self, config: Mapping[str, Any]) -> FloatArray:
        """The unit-cube point of a configuration (every parameter must be present)."""
        missing = [n for n in self.names if n not in config]
        if missing:
            raise InputError(f"missing {', '.join(missing)}", where="config")
        return np.array([p.to_unit(config[p.name]) for p in self.params], dtype=np.float64)

    def snap(self, points: npt.ArrayLike) -> FloatArray:
        """Points (one, or rows) moved onto the parameters' grids: integers rounded, choices snapped."""
        arr = np.array(points, dtype=np.float64)
        cols = arr.reshape(-1, self.dims)
        for j, p in enumerate(self.params):
            cols[:, j] = p.snap_unit(cols[:, j])
        return cols.reshape(arr.shape)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """A configuration drawn uniformly from the cube."""
        return self.decode(rng.random(self.dims))
