"""The one error type of the simulator."""

from __future__ import annotations


class SimError(ValueError):
    """Raised for every problem the simulator detects in its input: bad durations, rates,
    scenario keys or values, unreadable files. The message is one line that names the field
    (or file and line) at fault and says what would be right."""
