"""Small composable enumerators. Each yields ``(item, cursor)`` pairs starting after ``cursor``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from ..errors import ResumableError
from ..runner import Pause


def _index(cursor: Any, what: str) -> int:
    if cursor is None:
        return -1
    if isinstance(cursor, bool) or not isinstance(cursor, int) or cursor < -1:
        raise ResumableError(f"{what}: cursor {cursor!r} is not an item index (an int >= 0)")
    return cursor


def sequence(items: Sequence[Any], cursor: Any = None) -> Iterator[tuple[Any, int]]:
    """The items of a sequence; the cursor is the index of the last item completed."""
    start = _index(cursor, "sequence") + 1
    for i in range(start, len(items)):
        yield items[i], i


def int_range(
    start: int, stop: int, cursor: Any = None, step: int = 1
) -> Iterator[tuple[int, int]]:
    """The integers of ``range(start, stop, step)``; the cursor is the last number completed."""
    if step == 0:
        raise ResumableError("int_range: step 0 never moves; use a non-zero step")
    if cursor is not None:
        if isinstance(cursor, bool) or not isinstance(cursor, int):
            raise ResumableError(f"int_range: cursor {cursor!r} is not an int")
        if (cursor - start) % step:
            raise ResumableError(
                f"int_range: cursor {cursor!r} is not on the range({start}, {stop}, {step})"
            )
        start = cursor + step
    for n in range(start, stop, step):
        yield n, n


def batches(enumerator: Iterable[tuple[Any, Any]], size: int) -> Iterator[tuple[list[Any], Any]]:
    """Groups of up to ``size`` consecutive items; the cursor is the last item's cursor, so the
    underlying enumerator built from it resumes after the whole batch."""
    if size < 1:
        raise ResumableError(f"batches: size {size!r} must be >= 1")
    batch: list[Any] = []
    cursor: Any = None
    for item, cursor in enumerator:
        batch.append(item)
        if len(batch) == size:
            yield batch, cursor
            batch = []
    if batch:
        yield batch, cursor


def nested(
    outer: Callable[[Any], Iterable[tuple[Any, Any]]],
    inner: Callable[[Any, Any], Iterable[tuple[Any, Any]]],
    cursor: Any = None,
) -> Iterator[tuple[Any, list[Any]]]:
    """Every inner item of every outer item. ``outer(cursor)`` builds the outer enumerator,
    ``inner(outer_item, cursor)`` the inner one. Items are ``(outer_item, inner_item)``; the
    compound cursor is ``[cursor of the outer item before the current one, inner cursor]``."""
    if cursor is None:
        outer_cursor, inner_cursor = None, None
    elif isinstance(cursor, (list, tuple)) and len(cursor) == 2:
        outer_cursor, inner_cursor = cursor
    else:
        raise ResumableError(f"nested: cursor {cursor!r} is not [outer cursor, inner cursor]")
    previous = outer_cursor
    for outer_item, this_outer in outer(outer_cursor):
        for inner_item, this_inner in inner(outer_item, inner_cursor):
            yield (outer_item, inner_item), [previous, this_inner]
        inner_cursor = None
        previous = this_outer


def throttle(
    enumerator: Iterable[tuple[Any, Any]],
    predicate: Callable[[], bool],
    backoff: float = 30.0,
) -> Iterator[tuple[Any, Any]]:
    """Before each item, if ``predicate()`` is true, interrupt the job (cursor unchanged) and ask
    to be retried after ``backoff`` seconds: for a database under load, a rate limit, a replica
    that lags."""
    for pair in enumerator:
        if predicate():
            yield Pause("throttled", backoff), None
            return
        yield pair
