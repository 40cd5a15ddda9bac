"""Fixtures for the detector tests."""

from __future__ import annotations

import pytest

from novacron.detectors import REGISTRY


@pytest.fixture(params=sorted(REGISTRY))
def name(request: pytest.FixtureRequest) -> str:
    """Each registered detector name in turn."""
    return str(request.param)
