"""Fixtures for incident tests: a real HTTP receiver on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.incidents.loopback_receiver import Receiver, start_receiver, stop_receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rx = start_receiver()
    yield rx
    stop_receiver(rx)
