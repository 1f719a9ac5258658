"""Checks of numbers shared by the scenario's values: each returns the value as a float or
raises SimError naming ``field`` and what would be right."""

from __future__ import annotations

import math

from ..errors import SimError

__all__ = ["finite_number", "nonnegative", "positive", "probability"]


def finite_number(value: object, field: str) -> float:
    """``value`` as a float if it is a finite number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SimError(f"{field}: must be a finite number, got {value!r}")
    return float(value)


def positive(value: object, field: str) -> float:
    """``value`` as a float if it is a finite number > 0."""
    number = finite_number(value, field)
    if number <= 0:
        raise SimError(f"{field}: must be > 0, got {value!r}")
    return number


def nonnegative(value: object, field: str) -> float:
    """``value`` as a float if it is a finite number >= 0."""
    number = finite_number(value, field)
    if number < 0:
        raise SimError(f"{field}: must be >= 0, got {value!r}")
    return number


def probability(value: object, field: str) -> float:
    """``value`` as a float if it is a number in [0, 1]."""
    number = finite_number(value, field)
    if not 0 <= number <= 1:
        raise SimError(f"{field}: must be a probability in [0, 1], got {value!r}")
    return number
