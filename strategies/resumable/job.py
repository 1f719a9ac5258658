"""The user contract: ``build_enumerator(cursor)`` and ``each_iteration(item)``.

A cursor is a JSON value meaning "the last item completed". ``build_enumerator(cursor)`` returns
an iterable of ``(item, cursor)`` pairs that starts AFTER that cursor (``None``: from the start).
Cursors round-trip through JSON, so a tuple comes back as a list: enumerators must accept both.
The runner checks that cursors keep moving one way (in Python's order) unless the object that
``build_enumerator`` returns has a truthy ``vouches_for_order`` attribute (an order Python does
not know, such as a database collation): then a cursor must only differ from the one before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


class IterationJob:
    """Base class of resumable jobs. Override ``build_enumerator`` and ``each_iteration``; the
    callbacks are optional.

    ``max_runtime`` (seconds, or None) makes the job interrupt itself and be re-queued after that
    long in one run, whatever the runner's own limit.
    """

    max_runtime: float | None = None

    def build_enumerator(self, cursor: Any) -> Iterable[tuple[Any, Any]]:
        """Return ``(item, cursor)`` pairs starting after ``cursor``."""
        raise NotImplementedError(f"{type(self).__name__} must define build_enumerator(cursor)")

    def each_iteration(self, item: Any) -> None:
        """Process one item. Raising fails the job; the cursor stays at the previous item."""
        raise NotImplementedError(f"{type(self).__name__} must define each_iteration(item)")

    def on_start(self) -> None:
        """Called once, on the job's first run."""

    def on_resume(self) -> None:
        """Called at the start of every run after the first."""

    def on_shutdown(self) -> None:
        """Called after an interrupted run's checkpoint is durable, before it is re-queued."""

    def on_complete(self) -> None:
        """Called once, after the last item, when the job's completion is durable."""

    def around_iteration(self, item: Any, proceed: Callable[[], None]) -> None:
        """Wrap each item; ``proceed()`` runs ``each_iteration(item)``. Default: just proceed."""
        proceed()
