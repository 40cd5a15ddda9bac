"""Fixtures that start real demo services and always kill what they started."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.demo.demo_helpers import Services


@pytest.fixture
def services() -> Iterator[Services]:
    """A service starter whose children are killed at teardown."""
    svc = Services()
    try:
        yield svc
    finally:
        svc.close()
