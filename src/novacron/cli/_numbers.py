"""Numeric flags checked where they are typed, so a bad value is named by its flag."""

from __future__ import annotations

import math

from novacron.errors import InputError

__all__ = ["check_number"]


def check_number(value: float, flag: str, *, positive: bool) -> None:
    """A finite number >= 0 (> 0 with ``positive``); otherwise bad input named ``flag``."""
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise InputError(f"must be a finite number {'>' if positive else '>='} 0, got {value}", where=flag)
