"""Clocks the runner reads: the wall clock in production, a virtual clock under simulation.

The runner never sleeps and never reads time any other way, so the same code runs in a worker
process and inside the simulator (docs/architecture.md, principle 1: one engine, two clocks).
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Anything with ``now() -> float`` seconds. Lease expiry in a shared store compares these
    values across processes, so a clock shared by several workers must agree between them."""

    def now(self) -> float:
        """The current time, in seconds."""
        ...


class WallClock:
    """Seconds since the epoch (``time.time``): comparable across the processes of a machine."""

    __slots__ = ()

    def now(self) -> float:
        """``time.time()``."""
        return time.time()


class VirtualClock:
    """A clock that moves only when told to: the simulator advances it as simulated work is done."""

    __slots__ = ("_now",)

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        """The time the clock was last moved to."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move forward by ``seconds`` (>= 0)."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back: advance({seconds})")
        self._now += seconds

    def set(self, when: float) -> None:
        """Jump to ``when``, which must not be in the past."""
        if when < self._now:
            raise ValueError(f"a clock cannot go back: set({when}) at {self._now}")
        self._now = float(when)
