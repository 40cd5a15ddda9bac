"""The candidate settings ``novacron nab cv`` chooses among, and how each scores a file.

For the ensemble a candidate is a member set with or without the value-rank second
opinion; each is tried with several refractory holds. Any other registered detector is
one candidate with its defaults and no hold (its threshold is still chosen per fold).
"""

from __future__ import annotations

from collections.abc import Callable

from novacron.detectors.base import REGISTRY, FloatArray, Registry
from novacron.detectors.nab_cv import Case
from novacron.detectors.nab_run import unit_scores
from novacron.detectors.pipeline import NAB_RANK_HISTORY, general_ensemble, member_set, series_detector
from novacron.errors import InputError

__all__ = ["DEFAULT_CANDIDATES", "ENSEMBLE_HOLDS", "candidates_for"]

ENSEMBLE_HOLDS: tuple[int, ...] = (50, 100, 200)
# The grid kept: each extra candidate measured lowered the pooled out-of-sample score
# (a fold picks it on the other categories and the held-out one pays; docs/detectors.md).
DEFAULT_CANDIDATES: tuple[str, ...] = ("zhc+rank",)


def _ensemble_scorer(name: str, case: Case) -> FloatArray:
    members, _, rank = name.partition("+")
    det = general_ensemble(
        case.step_s, alarm=2.0, refractory=0, members=members, rank_history=NAB_RANK_HISTORY if rank else 0
    )
    return det.score_many(case.values)


def candidates_for(
    detector: str, names: tuple[str, ...] = DEFAULT_CANDIDATES, registry: Registry | None = None
) -> tuple[dict[str, tuple[int, ...]], Callable[[str, Case], FloatArray]]:
    """``(candidates → holds, scorer)`` for ``detector``; the ensemble's are ``names``.

    An ensemble candidate is a member set (letters, see
    :data:`~novacron.detectors.pipeline.MEMBER_LETTERS`) with an optional ``+rank``;
    unknown ones raise :class:`InputError` naming ``--candidates``. Other detectors get
    the same holds, so each is judged with the refractory the ensemble enjoys.
    """
    reg = REGISTRY if registry is None else registry
    if detector == "ensemble":
        for name in names:
            members, plus, rank = name.partition("+")
            try:
                member_set(members, 300.0)
            except InputError as exc:
                raise InputError(exc.reason, where=f"--candidates {name}") from exc
            if plus and rank != "rank":
                raise InputError(f"only '+rank' may follow the members, got {name!r}", where="--candidates")
        return dict.fromkeys(names, ENSEMBLE_HOLDS), _ensemble_scorer
    if detector not in reg:
        raise InputError(f"unknown detector {detector!r} (known: {', '.join(reg)})", where="--detector")

    def score(name: str, case: Case) -> FloatArray:
        return unit_scores(series_detector(name, case.step_s, registry=reg), case.values)[0]

    return {detector: ENSEMBLE_HOLDS}, score
