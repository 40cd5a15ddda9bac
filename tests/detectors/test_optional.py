"""Optional pieces: torch stays unimported until an LSTM trains; the LSTM, where installed."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest


def test_importing_the_library_does_not_import_heavy_dependencies() -> None:
    code = (
        "import sys, novacron.detectors, novacron.cli.nab; "
        "print(','.join(m for m in ('torch', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_lstm_forecast_error_flags_a_break_in_the_pattern() -> None:
    pytest.importorskip("torch")
    from novacron.detectors import LSTMDetector

    rng = np.random.default_rng(0)
    x = 10 + np.sin(np.arange(700) / 5) + rng.normal(0, 0.05, 700)
    x[650] = 13
    det = LSTMDetector(lookback=8, hidden=8, min_train=300, refit_every=1000, train_size=400, epochs=2)
    s = det.score_many(x)
    assert s[650] > det.default_threshold
    assert np.median(s[400:640]) < 2


def test_bench_detect_says_it_timed_the_object_path_without_numba() -> None:
    code = (
        "import sys, json; sys.modules['numba'] = None; "  # as if the fast extra were not installed
        "from novacron.benchmarks.detect import run; "
        "print(json.dumps(run(points=2000, names=['ensemble'])))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    report = json.loads(out.stdout)
    assert report["numba"] is None
    ensemble = report["detectors"]["ensemble"]
    assert (ensemble["compiled"], ensemble["path"], ensemble["batch_threads"]) == (False, "object", 1)
    assert ensemble["batch_points_measured"] == 2000
