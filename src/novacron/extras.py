"""Optional dependencies: import one, or say which extra brings it.

The base install carries what ``novacron run`` and ``novacron demo`` need. Forecasting
models, failure prediction, plots and NAB tooling live in the ``forecast`` extra, the
SimPy baseline in ``bench``, neural networks in ``ml``, the optimisers and Dask in ``tune``.
Every import of such a library
goes through :func:`require`, so a missing one is a clear error naming the extra rather
than a bare ``ModuleNotFoundError`` from deep inside.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from novacron.errors import MissingExtraError

__all__ = ["EXTRAS", "require"]

# Which extra ships each optional top-level module.
EXTRAS: dict[str, str] = {
    "sklearn": "forecast",
    "statsmodels": "forecast",
    "pandas": "forecast",
    "matplotlib": "forecast",
    "simpy": "bench",
    "torch": "ml",
    "gymnasium": "ml",
    "stable_baselines3": "ml",
    "numba": "fast",
    "optuna": "tune",
    "pymoo": "tune",
    "dask": "tune",
    "distributed": "tune",
}


def require(module: str, *, feature: str) -> ModuleType:
    """Import ``module`` (dotted) for ``feature``, or raise :class:`MissingExtraError` naming the extra."""
    top = module.partition(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name is not None and exc.name.partition(".")[0] != top:
            raise  # the library is there but something it needs is broken: not ours to rename
        extra = EXTRAS.get(top, top)
        raise MissingExtraError(
            f"{feature} needs {top}, which is not installed: pip install 'novacron[{extra}]'", extra=extra
        ) from exc
