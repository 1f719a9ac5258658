"""The stop signal: a flag that shutdown sets and the runner reads after every item.

Nothing is ever raised inside user code: a SIGTERM or SIGINT handler only records the request,
and the runner stops at the next item boundary, after the item in hand has finished.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator, Sequence


class StopSignal:
    """A one-way flag with the reason it was raised. ``requested`` is a plain attribute so that
    reading it after each item costs next to nothing."""

    __slots__ = ("reason", "requested")

    def __init__(self) -> None:
        self.requested = False
        self.reason: str | None = None

    def request(self, reason: str = "stop requested") -> None:
        """Ask every runner watching this flag to stop at its next item boundary."""
        if not self.requested:
            self.reason = reason
            self.requested = True

    def clear(self) -> None:
        """Lower the flag (a new worker life in the simulator, or a test)."""
        self.requested = False
        self.reason = None


@contextlib.contextmanager
def stop_on_signals(
    stop: StopSignal,
    signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
) -> Iterator[StopSignal]:
    """Within the block, the given POSIX signals set ``stop`` instead of killing the process.
    The previous handlers come back on exit. Must be entered from the main thread."""

    def handler(signum: int, _frame: object) -> None:
        stop.request(f"signal {signal.Signals(signum).name}")

    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
