"""Every registered detector honours the same contract."""

from __future__ import annotations

import inspect
import math
import pickle
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from novacron.detectors import REGISTRY
from novacron.detectors.base import Detector
from novacron.errors import InputError

from .support import make, sample_series


def _stream(det: Detector, xs: Iterable[float]) -> npt.NDArray[np.float64]:
    out: list[float] = []
    for x in xs:
        out.append(det.score_one(float(x)))
        det.learn_one(float(x))
    return np.array(out, dtype=np.float64)


def test_params_round_trip_and_clone_is_fresh(name: str) -> None:
    det = make(name)
    params = det.get_params()
    sig = set(inspect.signature(type(det).__init__).parameters) - {"self"}
    assert set(params) == sig
    xs = sample_series(200)
    trained_scores = det.score_many(xs)
    twin = det.clone()
    assert twin.get_params().keys() == params.keys()
    assert type(twin) is type(det)
    # A clone starts untrained: it reproduces a fresh detector's scores, not the trained one's.
    np.testing.assert_allclose(twin.score_many(xs), trained_scores, rtol=1e-9, atol=1e-9)


def test_pickle_keeps_state(name: str) -> None:
    det = make(name)
    xs = sample_series(400)
    det.score_many(xs[:250])
    copy = pickle.loads(pickle.dumps(det))  # noqa: S301 - round-tripping our own object
    np.testing.assert_allclose(copy.score_many(xs[250:]), det.score_many(xs[250:]), rtol=1e-9, atol=1e-9)


def test_streaming_equals_batch(name: str) -> None:
    xs = sample_series(500)
    streamed = _stream(make(name), xs)
    det = make(name)
    batched = np.concatenate([det.score_many(xs[:137]), det.score_many(xs[137:138]), det.score_many(xs[138:])])
    np.testing.assert_allclose(batched, streamed, rtol=1e-7, atol=1e-7)


def test_constant_series_scores_are_finite_and_calm(name: str) -> None:
    scores = make(name).score_many(np.full(300, 7.0))
    assert np.all(np.isfinite(scores))
    assert np.all(scores >= 0)


def test_seeded_runs_are_deterministic(name: str) -> None:
    xs = sample_series(300, seed=11)
    np.testing.assert_array_equal(make(name).score_many(xs), make(name).score_many(xs))


def test_registry_names_the_unknown() -> None:
    with pytest.raises(InputError, match="no-such-detector"):
        REGISTRY.create("no-such-detector")


values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e6, max_value=1e6),
    st.sampled_from([0.0, 1e308, -1e308, math.nan, 5.0]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(xs=st.lists(values, max_size=80))
def test_bad_input_never_crashes_or_yields_nan(name: str, xs: list[float]) -> None:
    det = make(name)
    streamed = _stream(det, xs + [5.0] * 5)
    assert not np.isnan(streamed).any()
    assert np.all(streamed >= 0)
    batch = make(name).score_many(np.array(xs + [5.0] * 5, dtype=np.float64))
    assert not np.isnan(batch).any()
    np.testing.assert_allclose(batch, streamed, rtol=1e-6, atol=1e-6)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(level=st.floats(min_value=-1e9, max_value=1e9), n=st.integers(min_value=1, max_value=300))
def test_constant_input_of_any_level(name: str, level: float, n: int) -> None:
    scores = make(name).score_many(np.full(n, level))
    assert np.all(np.isfinite(scores))
