"""Optional libraries: a missing one is an error that names the extra to install."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from novacron.errors import MissingExtraError
from novacron.extras import EXTRAS, require


@pytest.mark.parametrize(("module", "extra"), sorted(EXTRAS.items()))
def test_a_missing_library_names_its_extra(monkeypatch: pytest.MonkeyPatch, module: str, extra: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    with pytest.raises(MissingExtraError, match=rf"pip install 'novacron\[{extra}\]'") as caught:
        require(f"{module}.anything", feature="a feature")
    assert caught.value.extra == extra


def test_the_isolation_forest_without_scikit_learn_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from novacron.detectors import IsolationForestDetector

    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.ensemble", None)
    det = IsolationForestDetector(min_train=20)
    with pytest.raises(MissingExtraError, match=r"the iforest detector needs sklearn.*novacron\[forecast\]"):
        det.score_many(np.random.default_rng(0).normal(size=100))


def test_an_installed_library_is_returned() -> None:
    assert require("json", feature="x").dumps([]) == "[]"
