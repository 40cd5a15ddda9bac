"""The compiled ensemble computes what the object path computes."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import pickle
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from novacron.detectors import _fused, _fused_batch
from novacron.detectors.base import Detector
from novacron.detectors.changepoint import CUSUM, PageHinkley
from novacron.detectors.ensemble import Ensemble
from novacron.detectors.pipeline import general_ensemble, member_set
from novacron.detectors.robust import RobustZScore
from novacron.errors import InputError

pytestmark = [
    pytest.mark.skipif(not _fused.AVAILABLE, reason="numba (the fast extra) is not installed"),
    # The first call compiles the kernels (cached on disk afterwards).
    pytest.mark.timeout(600),
]


def _pair(members: str = "zhc", **params: object) -> tuple[Ensemble, Ensemble]:
    def build(kernel: str) -> Ensemble:
        return Ensemble(members=member_set(members, 300.0), kernel=kernel, **params)  # type: ignore[arg-type]

    return build("auto"), build("python")


def _series(n: int = 3000) -> np.ndarray:
    rng = np.random.default_rng(5)
    x = 100 + 10 * np.sin(np.arange(n) * 2 * np.pi / 288) + rng.normal(0, 2, n)
    spikes = rng.random(n) < 0.004
    x[spikes] += rng.normal(0, 40, int(spikes.sum()))
    x[n // 2 : n // 2 + 200] += 12  # a level shift
    x[n // 3 : n // 3 + 5] = np.nan
    x[n - 100] = math.inf
    return x


def _stream(det: Ensemble, xs: np.ndarray) -> np.ndarray:
    out = []
    for x in xs.tolist():
        out.append(det.score_one(x))
        det.learn_one(x)
    return np.array(out)


def test_default_pipeline_runs_compiled() -> None:
    assert general_ensemble(300.0).compiled
    assert not Ensemble(members=member_set("zhc", 300.0), kernel="python").compiled


def test_batch_scores_equal_the_object_path() -> None:
    fast, slow = _pair(alarm=0.24, refractory=100, rank_history=500, history=400)
    xs = _series()
    np.testing.assert_allclose(fast.score_many(xs), slow.score_many(xs), rtol=1e-9, atol=1e-9)


def test_streaming_scores_equal_the_object_path() -> None:
    fast, slow = _pair("zc", alarm=0.5, refractory=20, rank_history=300, history=300)
    xs = _series(1500)
    np.testing.assert_allclose(_stream(fast, xs), slow.score_many(xs), rtol=1e-9, atol=1e-9)


def test_mixed_streaming_and_batch_calls_continue_one_state() -> None:
    fast, slow = _pair("hz", rank_history=200, history=250, min_history=50)
    xs = _series(1200)
    parts = [fast.score_many(xs[:300]), _stream(fast, xs[300:450]), fast.score_many(xs[450:])]
    np.testing.assert_allclose(np.concatenate(parts), slow.score_many(xs), rtol=1e-9, atol=1e-9)


def test_one_sided_members_follow_their_side() -> None:
    members = (RobustZScore(side="up"), CUSUM(k=0.5, side="down"))
    fast = Ensemble(members=members, alarm=0.6)
    slow = Ensemble(members=tuple(m.clone() for m in members), alarm=0.6, kernel="python")
    xs = _series(1500)
    np.testing.assert_allclose(fast.score_many(xs), slow.score_many(xs), rtol=1e-9, atol=1e-9)


def test_pickled_state_goes_on_where_it_stopped() -> None:
    fast, _ = _pair(rank_history=300, history=300)
    xs = _series(1000)
    fast.score_many(xs[:600])
    fast.learn_one(float(xs[600]))  # a learn still pending inside the compiled state
    copy = pickle.loads(pickle.dumps(fast))  # noqa: S301 - round-tripping our own object
    np.testing.assert_array_equal(copy.score_many(xs[601:]), fast.score_many(xs[601:]))


def test_bad_values_never_crash_or_give_nan() -> None:
    fast, _ = _pair(rank_history=100, history=100, min_history=20)
    xs = np.array([math.nan, math.inf, -math.inf, 1e308, -1e308, 0.0] * 40 + [7.0] * 200)
    scores = np.concatenate([fast.score_many(xs), _stream(fast, xs)])
    assert np.all(np.isfinite(scores))
    assert np.all((scores >= 0) & (scores <= 1))


def test_unsupported_members_take_the_object_path() -> None:
    assert not Ensemble(members=(CUSUM(), PageHinkley())).compiled


def test_unknown_kernel_is_named() -> None:
    with pytest.raises(InputError, match="kernel"):
        Ensemble(kernel="gpu")


def test_bench_detect_times_the_compiled_default_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from novacron.cli import app

    monkeypatch.setenv(_fused_batch.THREADS_ENV, "1")
    res = CliRunner().invoke(app, ["bench", "detect", "--json", "--points", "3000", "--only", "ensemble,zscore"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    ensemble = report["detectors"]["ensemble"]
    assert ensemble["compiled"] is True
    assert ensemble["path"] == "compiled"
    assert ensemble["batch_threads"] == 1
    assert isinstance(report["numba"], str)
    assert ensemble["streaming_points_measured"] == ensemble["batch_points_measured"] == 3000
    assert "compiled" not in report["detectors"]["zscore"]


def test_bench_detect_names_a_bad_thread_setting() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "novacron.cli", "bench", "detect", "--points", "3000", "--only", "ensemble"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, _fused_batch.THREADS_ENV: "many"},
    )
    assert res.returncode == 2, res.stderr
    assert f"{_fused_batch.THREADS_ENV}: must be a whole number >= 1, got 'many'" in res.stderr


def test_controller_pipelines_keep_the_object_path() -> None:
    from novacron.detectors.pipeline import default_pipeline

    for kind in ("latency", "cpu", "generic"):
        det = default_pipeline(kind).detector
        assert isinstance(det, Ensemble)
        assert not det.compiled


def _ties(n: int = 4000) -> np.ndarray:
    """Values with many ties and long runs: the rank window's blocks split, empty and rebuild."""
    rng = np.random.default_rng(11)
    x = np.round(rng.normal(0.0, 3.0, n))
    x[n // 4 : n // 4 + 400] = 5.0  # one value repeated longer than a block
    x[n // 2 : n // 2 + 300] = np.arange(300.0)  # ascending run
    x[3 * n // 4 : 3 * n // 4 + 300] = -np.arange(300.0)  # descending run
    return x


@pytest.mark.parametrize("rank_history", [1, 2, 127, 128, 129, 700])
def test_rank_window_counts_equal_the_object_path(rank_history: int) -> None:
    fast, slow = _pair("c", rank_history=rank_history, history=200, min_history=20)
    xs = _ties()
    np.testing.assert_allclose(fast.score_many(xs), slow.score_many(xs), rtol=1e-9, atol=1e-9)


def test_batch_equals_streaming_on_the_compiled_path() -> None:
    stream, _ = _pair(alarm=0.24, refractory=100, rank_history=500, history=400)
    batch, _ = _pair(alarm=0.24, refractory=100, rank_history=500, history=400)
    xs = np.concatenate([_series(), _ties(2000)])
    np.testing.assert_array_equal(batch.score_many(xs), _stream(stream, xs))


def _long(n: int = 12_000) -> np.ndarray:
    """Longer than a batch block (4,096 values) and many rank chunks, with flat runs and ties."""
    rng = np.random.default_rng(23)
    x = 100 + 10 * np.sin(np.arange(n) * 2 * np.pi / 288) + rng.normal(0, 2, n)
    x[rng.random(n) < 0.003] += 60.0
    x[2000:2600] = 42.0  # flat: the z-score window and the rank window fill with one value
    x[5000:5300] = np.round(x[5000:5300])  # ties
    x[7000:7010] = np.nan
    return x


@pytest.mark.parametrize(
    "params",
    [
        {},  # the default pipeline's calibration and rank window (4,000 values)
        {"rank_history": 300, "history": 250, "min_history": 30},
        {"rank_history": 3, "history": 50, "min_history": 5},  # a window shorter than a chunk
    ],
)
def test_batch_equals_streaming_on_long_series(params: dict[str, int]) -> None:
    def build() -> Ensemble:
        members = (RobustZScore(window=255, refresh=7), *member_set("hc", 300.0))  # odd window, odd refresh
        return Ensemble(members=members, alarm=0.24, refractory=100, **params)  # type: ignore[arg-type]

    xs = _long()
    np.testing.assert_array_equal(build().score_many(xs), _stream(build(), xs))


def test_default_pipeline_batch_equals_streaming_across_calls() -> None:
    """Batches of every size, between streamed points, leave the state streaming would."""
    batch, stream = general_ensemble(300.0), general_ensemble(300.0)
    assert batch.compiled
    xs = _long()
    parts, lo = [], 0
    for size in (1, 4095, 4097, 1, 300, 2500):
        parts.append(batch.score_many(xs[lo : lo + size]))
        lo += size
        parts.append(_stream(batch, xs[lo : lo + 50]))
        lo += 50
    parts.append(batch.score_many(xs[lo:]))
    np.testing.assert_array_equal(np.concatenate(parts), _stream(stream, xs))


@pytest.mark.parametrize("tied", [False, True])
def test_batch_merge_by_ranges_keeps_the_multiset_sorted(tied: bool) -> None:
    """Window plus values come, less values gone (ties at the ranges' cuts too)."""
    rng = np.random.default_rng(11)
    for _ in range(300):
        size, k = int(rng.integers(0, 60)), int(rng.integers(1, 30))
        draw = (lambda n: rng.integers(0, 5, n).astype(float)) if tied else (lambda n: rng.normal(size=n))
        values, came = np.sort(draw(size)), np.sort(draw(k))
        left = int(rng.integers(0, min(size, k) + 1))
        gone = np.sort(rng.choice(values, left, replace=False))
        window, came2, gone2 = (np.concatenate([a, [0.0, 0.0]]) for a in (values, came, gone))
        out, at = np.empty(size + k + 2), np.empty(k + 2, np.int64)
        _fused_batch._merge(window, size, gone2, left, came2, k, out, at)
        kept = np.concatenate([values, came])
        for g in gone:
            kept = np.delete(kept, np.flatnonzero(kept == g)[0])
        np.testing.assert_array_equal(out[: size + k - left], np.sort(kept))
        np.testing.assert_array_equal(at[:k], np.searchsorted(values, came, side="right"))


def test_two_z_score_members_batch_equals_streaming() -> None:
    """Each z-score member reads its own refresh groups, sorted before the kernel."""

    def build() -> Ensemble:
        members = (RobustZScore(window=64, refresh=16), *member_set("h", 300.0), RobustZScore(window=96, refresh=8))
        return Ensemble(members=members, alarm=0.3, rank_history=300, history=250, min_history=30)

    xs = _long(6000)
    batch = build()
    parts = [batch.score_many(xs[lo : lo + size]) for lo, size in ((0, 1000), (1000, 37), (1037, 4963))]
    np.testing.assert_array_equal(np.concatenate(parts), _stream(build(), xs))


def _threaded(members: tuple[Detector, ...] | None = None, threads: int = 2, **params: object) -> Ensemble:
    return Ensemble(members=members, alarm=0.24, refractory=100, batch_threads=threads, **params)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("members", "params"),
    [
        ("zhc", {"rank_history": 4000}),  # the default pipeline's members and window: CUSUM joins the rank
        ("zhzz", {"rank_history": 300, "history": 250, "min_history": 30}),  # a z-score joins the rank
        ("hcz", {"rank_history": 0}),  # no rank: the members alone are split
        ("zhc", {"rank_history": 3, "history": 50, "min_history": 5}),  # a window shorter than a chunk
    ],
)
def test_batches_on_two_threads_equal_streaming(members: str, params: dict[str, int]) -> None:
    """Batches above and below the two-thread size, between streamed points, with gaps."""

    def build(threads: int) -> Ensemble:
        z_scores = iter([RobustZScore(window=255, refresh=7), RobustZScore(window=96, refresh=8), RobustZScore()])
        chosen = tuple(next(z_scores) if m == "z" else member_set(m, 300.0)[0] for m in members)
        return _threaded(chosen, threads, **params)

    xs = _long(3 * _fused_batch.PARALLEL_MIN + 9000)
    xs[_fused_batch.PARALLEL_MIN + 17 : _fused_batch.PARALLEL_MIN + 40] = np.nan  # a gap inside a threaded batch
    two, one = build(2), build(1)
    parts, lo = [], 0
    for size in (_fused_batch.PARALLEL_MIN + 4097, 1, 4095, _fused_batch.PARALLEL_MIN, 300):
        assert size < _fused_batch.PARALLEL_MIN or np.isfinite(xs[lo : lo + size]).sum() >= _fused_batch.PARALLEL_MIN
        parts.append(two.score_many(xs[lo : lo + size]))
        lo += size
        parts.append(_stream(two, xs[lo : lo + 50]))
        lo += 50
    parts.append(two.score_many(xs[lo:]))
    np.testing.assert_array_equal(np.concatenate(parts), _stream(build(1), xs))
    np.testing.assert_array_equal(one.score_many(xs), _stream(build(2), xs))


def test_two_threads_leave_the_state_one_thread_leaves() -> None:
    one, two = general_ensemble(300.0), general_ensemble(300.0)
    one.batch_threads, two.batch_threads = 1, 2
    xs = _long(_fused_batch.PARALLEL_MIN + 5000)
    np.testing.assert_array_equal(two.score_many(xs), one.score_many(xs))
    a, b = one._compiled(), two._compiled()
    assert a is not None
    assert b is not None
    np.testing.assert_array_equal(a.floats, b.floats)
    np.testing.assert_array_equal(a.ints, b.ints)


def test_batch_threads_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_fused_batch.THREADS_ENV, raising=False)
    assert _fused_batch.batch_threads(1) == 1
    assert _fused_batch.batch_threads(8) == 2  # a batch has two sides
    assert _fused_batch.batch_threads() == (2 if (os.cpu_count() or 1) > 1 else 1)
    monkeypatch.setenv(_fused_batch.THREADS_ENV, "1")
    assert _fused_batch.batch_threads() == 1
    assert _fused_batch.batch_threads(2) == 2  # the detector's own setting comes first
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(_fused_batch.THREADS_ENV, bad)
        with pytest.raises(InputError, match=_fused_batch.THREADS_ENV):
            general_ensemble(300.0).score_many(np.arange(10.0))
    with pytest.raises(InputError, match="batch_threads"):
        Ensemble(batch_threads=-1)


def _score_in_child(xs: np.ndarray, out: Any) -> None:
    det = general_ensemble(300.0)
    det.batch_threads = 2
    out.put(det.score_many(xs).tolist())


def test_a_forked_child_runs_two_thread_batches_too() -> None:
    """The parent's second thread is not in a forked child: the child starts its own."""
    xs = _long(_fused_batch.PARALLEL_MIN + 1000)
    parent = general_ensemble(300.0)
    parent.batch_threads = 2
    expected = parent.score_many(xs)  # the parent's second thread is running now
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    child = ctx.Process(target=_score_in_child, args=(xs, results), daemon=True)
    child.start()
    try:
        got = results.get(timeout=120)  # the kernels are compiled already: seconds
    finally:
        child.join(timeout=30)
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0
    np.testing.assert_array_equal(np.array(got), expected)
