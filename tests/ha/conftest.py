"""Fixtures for the high-availability and store-fault tests."""

from __future__ import annotations

import pytest

from novacron.demo.fleet import free_port_block


@pytest.fixture
def ports() -> int:
    """The first of a block of 10 free loopback ports."""
    return free_port_block(10)
