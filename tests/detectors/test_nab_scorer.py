"""The NAB scorer against hand-computed cases and a literal re-implementation of the rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novacron.detectors.nab import DEFAULT_PROFILES, FileCase, Profile, probation_rows, scaled_sigmoid, score_corpus

STD = "standard"


def _case(n: int, hits: dict[int, float], windows: list[tuple[int, int]]) -> FileCase:
    scores = np.zeros(n)
    for row, s in hits.items():
        scores[row] = s
    return FileCase("f.csv", scores, windows)


def _score(cases: list[FileCase], t: float = 0.5, profile: str = STD) -> float:
    default, _ = score_corpus(cases, threshold=t)
    return default.scores[profile]


def test_sigmoid_and_probation_follow_the_rules() -> None:
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(-1.0) == pytest.approx(0.986614298)
    assert scaled_sigmoid(3.5) == -1.0
    assert probation_rows(20) == 3
    assert probation_rows(100_000) == 750


def test_detection_at_left_edge_is_perfect() -> None:
    assert _score([_case(20, {10: 1.0}, [(10, 14)])]) == pytest.approx(100.0)


def test_later_detection_earns_scaled_credit() -> None:
    # Row 12 of window [10, 14]: p = -(14 - 12 + 1)/5 = -0.6.
    credit = (2 / (1 + math.exp(-3.0)) - 1) / (2 / (1 + math.exp(-5.0)) - 1)
    assert credit == pytest.approx(0.917429, abs=1e-6)
    assert _score([_case(20, {12: 1.0, 13: 1.0}, [(10, 14)])]) == pytest.approx(100 * (credit + 1) / 2)


def test_false_positive_before_first_window_costs_full_weight() -> None:
    raw = 1.0 - 0.11
    assert _score([_case(20, {5: 1.0, 10: 1.0}, [(10, 14)])]) == pytest.approx(100 * (raw + 1) / 2)


def test_false_positive_after_window_is_scaled_by_distance() -> None:
    # Row 16 after window [10, 14]: p = (16 - 14)/(5 - 1) = 0.5; the window itself is missed.
    sig = 2 / (1 + math.exp(2.5)) - 1
    raw = -1.0 + 0.11 * sig
    assert _score([_case(20, {16: 1.0}, [(10, 14)])]) == pytest.approx(100 * (raw + 1) / 2)


def test_far_false_positive_costs_full_weight_and_probation_is_ignored() -> None:
    # 100 rows: probation 15, so row 3 is ignored; row 30 is p = 9 > 3 past window [20, 21].
    raw = 1.0 - 0.11
    assert _score([_case(100, {3: 1.0, 20: 1.0, 30: 1.0}, [(20, 21)])]) == pytest.approx(100 * (raw + 1) / 2)


def test_profiles_and_normalisation_over_a_corpus() -> None:
    cases = [_case(20, {5: 1.0}, [(10, 14)]), FileCase("g.csv", np.zeros(20), [(8, 12)])]
    # Raw per profile: two missed windows and one early false positive.
    for name, pr in DEFAULT_PROFILES.items():
        raw = -2 * pr.fn - pr.fp
        null, perfect = -2 * pr.fn, 2 * pr.tp
        assert _score(cases, profile=name) == pytest.approx(100 * (raw - null) / (perfect - null))


def test_optimised_threshold_picks_the_best_cut() -> None:
    # 0.9 marks the true window, 0.6 a false positive: the best threshold sits above 0.6.
    case = _case(20, {5: 0.6, 10: 0.9}, [(10, 14)])
    default, best = score_corpus([case], threshold=0.5)
    assert default.scores[STD] == pytest.approx(100 * (0.89 + 1) / 2)
    assert best[STD].threshold == pytest.approx(0.9)
    assert best[STD].scores[STD] == pytest.approx(100.0)


def _literal(cases: list[FileCase], t: float, pr: Profile) -> float:
    """The rules as written, row by row, for one threshold."""
    total, n_win = 0.0, 0
    for case in cases:
        n = len(case.scores)
        start = probation_rows(n)
        wins = sorted(case.windows)
        n_win += len(wins)
        for lo, hi in wins:
            det = [i for i in range(max(lo, start), hi + 1) if case.scores[i] >= t]
            if det:
                p = -(hi - det[0] + 1) / (hi - lo + 1)
                total += pr.tp * scaled_sigmoid(p) / scaled_sigmoid(-1.0)
            else:
                total -= pr.fn
        for i in range(start, n):
            if case.scores[i] < t or any(lo <= i <= hi for lo, hi in wins):
                continue
            prev = [w for w in wins if w[1] < i]
            if not prev:
                total -= pr.fp
            else:
                lo, hi = prev[-1]
                total += pr.fp * scaled_sigmoid((i - hi) / max(hi - lo, 1))
    null, perfect = -pr.fn * n_win, pr.tp * n_win
    return 100 * (total - null) / (perfect - null)


@st.composite
def corpora(draw: st.DrawFn) -> list[FileCase]:
    cases = []
    for k in range(draw(st.integers(1, 3))):
        n = draw(st.integers(10, 60))
        scores = np.array(draw(st.lists(st.sampled_from([0.0, 0.2, 0.5, 0.8, 1.0]), min_size=n, max_size=n)))
        cuts = sorted(draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=6, unique=True)))
        wins = [(cuts[i], cuts[i + 1]) for i in range(0, len(cuts) - 1, 2)]
        cases.append(FileCase(f"f{k}.csv", scores, wins))
    return cases


@settings(max_examples=60, deadline=None)
@given(cases=corpora(), t=st.sampled_from([0.1, 0.5, 0.8, 1.0]))
def test_fast_sweep_matches_the_literal_rules(cases: list[FileCase], t: float) -> None:
    if sum(len(c.windows) for c in cases) == 0:
        return
    default, best = score_corpus(cases, threshold=t)
    for name, pr in DEFAULT_PROFILES.items():
        assert default.scores[name] == pytest.approx(_literal(cases, t, pr), abs=1e-9)
        # The optimum is at least as good as any of the thresholds tried here.
        for other in (0.1, 0.5, 0.8, 1.0, math.inf):
            assert best[name].scores[name] >= _literal(cases, other, pr) - 1e-9
