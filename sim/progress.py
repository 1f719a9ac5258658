"""Progress of long work on stderr: a tqdm bar on a terminal, plain lines elsewhere.

``Progress(total, label, unit)`` counts units of work done (runs, cells). Its ``mode`` says how
it shows them:

- ``"auto"``: a tqdm bar when stderr is a terminal, else ``plain`` lines (a CI log, a pipe);
- ``"plain"``: a line such as ``sweep: 12/40 cells, 1m 3s`` every ``every`` seconds
  (``PLAIN_EVERY``), and a last
  one when the work is done, if the work took long enough to show any;
- ``"quiet"``: nothing.

Nothing here changes what the work computes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TextIO

__all__ = ["MODES", "Progress", "counter", "format_elapsed"]

#: How progress is shown; see the module's docstring.
MODES = ("auto", "plain", "quiet")

#: Seconds between two plain lines.
PLAIN_EVERY = 5.0


def format_elapsed(seconds: float) -> str:
    """Elapsed time for a person: "0.4s", "12s", "1m 3s", "2h 5m"."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        minutes, secs = divmod(whole, 60)
        return f"{minutes}m {secs}s" if minutes else f"{secs}s"
    hours, rest = divmod(whole, 3600)
    return f"{hours}h {rest // 60}m"


class Progress:
    """Units of work done out of ``total``, shown on ``stream`` (stderr) as ``mode`` says.

    Use it as a context manager, or call ``close`` when the work ends."""

    def __init__(self, total: int, label: str, unit: str = "run", *, mode: str = "auto",
                 stream: TextIO | None = None, every: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if mode not in MODES:
            raise ValueError(f"progress mode {mode!r}: use one of {', '.join(MODES)}")
        self.total, self.label, self.unit = total, label, unit
        self.done = 0
        self._stream = stream if stream is not None else sys.stderr
        self._every = PLAIN_EVERY if every is None else every
        self._clock = clock
        self._start = self._last = clock()
        self._shown = False
        self._written = 0
        if mode == "auto":
            mode = "bar" if _isatty(self._stream) else "plain"
        self.mode = mode
        self._bar: Any = None
        if mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=label, unit=unit, leave=False, file=self._stream)

    def line(self) -> str:
        """The plain line for the work done so far: ``sweep: 12/40 cells, 1m 3s``."""
        units = self.unit if self.total == 1 else f"{self.unit}s"
        elapsed = format_elapsed(self._clock() - self._start)
        return f"{self.label}: {self.done}/{self.total} {units}, {elapsed}"

    def update(self, n: int = 1) -> None:
        """Count ``n`` more units done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.mode == "plain" and self._clock() - self._last >= self._every:
            self._write()

    def close(self) -> None:
        """End the display: the bar goes; after plain lines, a last one says where it ended."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.mode == "plain" and self._shown:
            if self._written != self.done:
                self._write()
            self._shown = False

    def _write(self) -> None:
        self._stream.write(self.line() + "\n")
        self._stream.flush()
        self._last = self._clock()
        self._shown = True
        self._written = self.done

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def counter(label: str, unit: str, mode: str = "plain",
            stream: TextIO | None = None) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callable (as ``run_sweep`` and the report take) that shows
    the count as a ``Progress`` of ``mode`` would; a new total starts a new count."""
    state: dict[str, Progress] = {}

    def show(done: int, total: int) -> None:
        current = state.get("progress")
        if current is None or current.total != total or done <= current.done:
            if current is not None:
                current.close()
            current = state["progress"] = Progress(total, label, unit, mode=mode,
                                                   stream=stream)
        current.update(done - current.done)
        if done >= total:
            current.close()
            del state["progress"]

    return show


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
