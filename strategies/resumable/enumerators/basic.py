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
    """The integers of ``range(start, stop, step)``; the cursor is the last number completed,
    one of the range's numbers."""
    if step == 0:
        raise ResumableError("int_range: step 0 never moves; use a non-zero step")
    numbers = range(start, stop, step)
    if cursor is not None:
        if isinstance(cursor, bool) or not isinstance(cursor, int):
            raise ResumableError(f"int_range: cursor {cursor!r} is not an int")
        if cursor not in numbers:
            raise ResumableError(
                f"int_range: cursor {cursor!r} is not one of range({start}, {stop}, {step}); "
                f"a cursor is the last number completed (or None to start)"
            )
        numbers = range(cursor + step, stop, step)
    for n in numbers:
        yield n, n


def batches(enumerator: Iterable[tuple[Any, Any]], size: int) -> Iterator[tuple[Any, Any]]:
    """Groups of up to ``size`` consecutive items; the cursor is the last item's cursor, so the
    underlying enumerator built from it resumes after the whole batch. A ``Pause`` from the
    underlying enumerator ends the batches at once: the items gathered for the batch in hand
    are dropped (they run after the resume) and the pause is passed on with the cursor of the
    last batch yielded."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ResumableError(f"batches: size {size!r} must be an int >= 1")
    batch: list[Any] = []
    cursor: Any = None
    done: Any = None  # the cursor of the last batch yielded
    for item, cursor in enumerator:
        if type(item) is Pause:
            yield item, done
            return
        batch.append(item)
        if len(batch) == size:
            yield batch, cursor
            done = cursor
            batch = []
    if batch:
        yield batch, cursor


def nested(
    outer: Callable[[Any], Iterable[tuple[Any, Any]]],
    inner: Callable[[Any, Any], Iterable[tuple[Any, Any]]],
    cursor: Any = None,
) -> Iterator[tuple[Any, Any]]:
    """Every inner item of every outer item. ``outer(cursor)`` builds the outer enumerator,
    ``inner(outer_item, cursor)`` the inner one. Items are ``(outer_item, inner_item)``; the
    compound cursor is ``[cursor of the outer item before the current one, inner cursor]``. A
    ``Pause`` from either enumerator ends it at once and is passed on with the cursor of the
    last item yielded."""
    if cursor is None:
        outer_cursor, inner_cursor = None, None
    elif isinstance(cursor, (list, tuple)) and len(cursor) == 2:
        outer_cursor, inner_cursor = cursor
    else:
        raise ResumableError(f"nested: cursor {cursor!r} is not [outer cursor, inner cursor]")
    done = cursor  # the cursor of the last item yielded
    previous = outer_cursor
    for outer_item, this_outer in outer(outer_cursor):
        if type(outer_item) is Pause:
            yield outer_item, done
            return
        for inner_item, this_inner in inner(outer_item, inner_cursor):
            if type(inner_item) is Pause:
                yield inner_item, done
                return
            done = [previous, this_inner]
            yield (outer_item, inner_item), done
        inner_cursor = None
        previous = this_outer


def throttle(
    enumerator: Iterable[tuple[Any, Any]],
    predicate: Callable[[], bool],
    backoff: float = 30.0,
) -> Iterator[tuple[Any, Any]]:
    """Before each item, if ``predicate()`` is true, interrupt the job (cursor unchanged) and ask
    to be retried after ``backoff`` seconds: for a database under load, a rate limit, a replica
    that lags. It composes: inside ``batches`` or ``nested`` the pause is passed on as a pause,
    never as an item."""
    for pair in enumerator:
        if predicate():
            yield Pause("throttled", backoff), None
            return
        yield pair
