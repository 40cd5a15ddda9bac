"""Fixtures for the high-availability and store-fault tests: ports, and SQLite or PostgreSQL stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from novacron.demo.fleet import free_port_block
from tests.postgres import pg_url  # noqa: F401 - a fixture

from .cluster import Remote, remote_server


@pytest.fixture
def ports() -> int:
    """The first of a block of 10 free loopback ports."""
    return free_port_block(10)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL on SQLite (a file) or PostgreSQL (a fresh database)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ha.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def remote() -> Iterator[Remote]:
    """The remote-target server, for the tests of `novacron run` controllers sharing remote targets."""
    with remote_server() as r:
        yield r
