"""The integration tests' controller factory (real processes, stopped afterwards)."""

from tests.integration.conftest import controller

__all__ = ["controller"]
