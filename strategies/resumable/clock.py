"""Clocks the runner reads: the wall clock in production, a virtual clock under simulation.

The runner never sleeps and never reads time any other way, so the same code runs in a worker
process and inside the simulator (docs/architecture.md, principle 1: one engine, two clocks).

A clock has two readings. ``now()`` is the time written into the store (lease expiry, the
``updated_at`` of a row): it is compared across processes, so workers sharing a store must
agree on it. ``monotonic()`` (optional; ``now()`` stands in for it when absent) times what one
process measures on its own: checkpoint intervals, run-time limits and the ``run_time``
totals. A step of the system clock moves the first, never the second.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Anything with ``now() -> float`` seconds, and optionally ``monotonic() -> float``
    seconds for intervals. Lease expiry in a shared store compares ``now()`` values across
    processes, so a clock shared by several workers must agree between them."""

    def now(self) -> float:
        """The current time, in seconds."""
        ...


class WallClock:
    """The system clock. ``now()`` is seconds since the epoch (``time.time``), comparable across
    the processes and machines whose clocks are synchronised, except that it never goes back:
    after a backward step of the system clock it goes on from where it was at the pace of the
    monotonic clock until the system clock has caught up, so leases this process writes do not
    expire early. A forward step is followed (it cannot be told from a correction).
    ``monotonic()`` is ``time.monotonic``: intervals and run time, immune to steps."""

    __slots__ = ("_lock", "_mono", "_wall")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mono = time.monotonic()
        self._wall = time.time()

    def now(self) -> float:
        """``time.time()``, held from going back (see the class)."""
        with self._lock:
            mono = time.monotonic()
            wall = time.time()
            floor = self._wall + (mono - self._mono)
            if wall < floor:
                wall = floor
            self._wall, self._mono = wall, mono
            return wall

    def monotonic(self) -> float:
        """``time.monotonic()``: seconds from an arbitrary origin, never stepped."""
        return time.monotonic()


class VirtualClock:
    """A clock that moves only when told to: the simulator advances it as simulated work is done.
    Its ``monotonic()`` is its ``now()``."""

    __slots__ = ("_now",)

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        """The time the clock was last moved to."""
        return self._now

    def monotonic(self) -> float:
        """The same as ``now()``: a virtual clock never steps."""
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
