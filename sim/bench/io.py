"""What resuming and iterating cost for the CSV and SQL enumerators, as ratios measured here.

Each function builds its own data in a temporary directory, times with
:func:`time.perf_counter`, interleaves the two things it compares (so a noisy machine slows
both alike), and returns the ratio of their medians. Sizes are parameters, so a quick run can
pass small ones.
"""

from __future__ import annotations

import bisect
import logging
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from itertools import accumulate
from typing import Any

from deploysim.strategies.resumable.enumerators.csv_rows import csv_rows
from deploysim.strategies.resumable.enumerators.sql import sql_rows

__all__ = ["csv_resume_ratio", "sql_iter_ratio", "sql_resume_ratio"]

logger = logging.getLogger(__name__)

_ROWS_PER_CHUNK = 50_000
_SQL_BATCH = 1000


def csv_resume_ratio(size_bytes: int = 50_000_000, repeats: int = 9) -> float:
    """Time to the first row when resuming at 90 % of a CSV file of ``size_bytes``, over the
    time to the first row from the start (medians of ``repeats`` runs each; target <= 2)."""
    with tempfile.TemporaryDirectory(prefix="deploysim-bench-csv-") as tmp:
        path = os.path.join(tmp, "rows.csv")
        _write_csv(path, size_bytes)
        cursor = None
        for _, c in csv_rows(path):
            if c["offset"] >= 0.9 * size_bytes:
                cursor = c
                break
        if cursor is None:
            raise ValueError(f"size_bytes {size_bytes!r} is too small for a 90 % cursor")

        def first_row(at: dict[str, Any] | None) -> Callable[[], None]:
            def run() -> None:
                it = csv_rows(path, at)
                next(it)
                it.close()

            return run

        start, resumed = _medians(first_row(None), first_row(cursor), repeats)
    ratio = resumed / start
    logger.info(
        "csv resume: %.0f µs at 90 %% vs %.0f µs at 0 %% of %d bytes: ratio %.2f",
        resumed * 1e6,
        start * 1e6,
        size_bytes,
        ratio,
    )
    return ratio


def sql_resume_ratio(rows: int = 1_000_000, repeats: int = 9) -> float:
    """Time to the first row of :func:`sql_rows` resuming at 90 % of a SQLite table of
    ``rows`` rows, over the same from the start (medians of ``repeats`` runs; target <= 2)."""
    with tempfile.TemporaryDirectory(prefix="deploysim-bench-sql-") as tmp:
        conn = _sqlite_table(os.path.join(tmp, "rows.db"), rows)
        try:

            def first_row(at: list[Any] | None) -> Callable[[], None]:
                def run() -> None:
                    it = sql_rows(conn, "items", "id", batch_size=_SQL_BATCH, cursor=at)
                    next(it)
                    it.close()

                return run

            cursor = [int(rows * 0.9)]
            start, resumed = _medians(first_row(None), first_row(cursor), repeats)
        finally:
            conn.close()
    ratio = resumed / start
    logger.info(
        "sql resume: %.0f µs at 90 %% vs %.0f µs at 0 %% of %d rows: ratio %.2f",
        resumed * 1e6,
        start * 1e6,
        rows,
        ratio,
    )
    return ratio


def sql_iter_ratio(rows: int = 1_000_000, repeats: int = 3) -> float:
    """Time of a full iteration of :func:`sql_rows` over a SQLite table of ``rows`` rows, over
    a hand-written keyset loop that sends the same queries and builds the same row dicts and
    key lists (medians of ``repeats`` runs each; target <= 1.2)."""
    with tempfile.TemporaryDirectory(prefix="deploysim-bench-sql-") as tmp:
        conn = _sqlite_table(os.path.join(tmp, "rows.db"), rows)
        try:

            def enumerated() -> None:
                n = 0
                for _row, _cursor in sql_rows(conn, "items", "id", batch_size=_SQL_BATCH):
                    n += 1
                if n != rows:
                    raise AssertionError(f"sql_rows yielded {n} rows of {rows}")

            def by_hand() -> None:
                n = _keyset_by_hand(conn)
                if n != rows:
                    raise AssertionError(f"the hand-written loop saw {n} rows of {rows}")

            plain, enum = _medians(by_hand, enumerated, repeats)
        finally:
            conn.close()
    ratio = enum / plain
    logger.info(
        "sql iteration of %d rows: %.3f s with sql_rows vs %.3f s by hand: ratio %.2f",
        rows,
        enum,
        plain,
        ratio,
    )
    return ratio


def _keyset_by_hand(conn: sqlite3.Connection) -> int:
    """The loop one would write without sql_rows: same SQL, same rows, same cursors."""
    first = f'SELECT "id", * FROM "items" ORDER BY "id" LIMIT {_SQL_BATCH}'
    after = f'SELECT "id", * FROM "items" WHERE "id" > ? ORDER BY "id" LIMIT {_SQL_BATCH}'
    last = None
    n = 0
    while True:
        cur = conn.cursor()
        if last is None:
            cur.execute(first)
        else:
            cur.execute(after, (last,))
        page = cur.fetchall()
        names = [d[0] for d in cur.description[1:]]
        cur.close()
        if not page:
            return n
        for raw in page:
            _row, _cursor = dict(zip(names, raw[1:], strict=True)), [raw[0]]
            n += 1
        last = page[-1][0]


def _medians(a: Callable[[], None], b: Callable[[], None], repeats: int) -> tuple[float, float]:
    """Run ``a`` and ``b`` alternately (after one warm-up each); return their median times."""
    a()
    b()
    times_a: list[float] = []
    times_b: list[float] = []
    for _ in range(max(1, repeats)):
        for fn, times in ((a, times_a), (b, times_b)):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(times_a), statistics.median(times_b)


def _write_csv(path: str, size_bytes: int) -> None:
    """Write a CSV file of whole rows, at most ``size_bytes`` bytes: a header, then rows of an
    id, a name, a quoted field with a comma, a number and, one row in 50, a two-line note."""
    plain = b'%d,user-%d,"Street %d, Town",%d.%02d,\n'
    noted = b'%d,user-%d,"Street %d, Town",%d.%02d,"first line\nsecond ""quoted"" line"\n'
    with open(path, "wb") as f:
        written = f.write(b"id,name,address,amount,note\n")
        i = 0
        while True:
            rows = [
                (noted if j % 50 == 0 else plain) % (j, j, j % 997, j % 10_000, j % 100)
                for j in range(i, i + _ROWS_PER_CHUNK)
            ]
            i += _ROWS_PER_CHUNK
            room = size_bytes - written
            fits = bisect.bisect_right(list(accumulate(map(len, rows))), room)
            written += f.write(b"".join(rows[:fits]))
            if fits < len(rows):
                return


def _sqlite_table(path: str, rows: int) -> sqlite3.Connection:
    """A file-backed SQLite table ``items`` of ``rows`` rows with an integer primary key."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, amount REAL)")
    with conn:
        conn.executemany(
            "INSERT INTO items VALUES (?, ?, ?)",
            ((i, f"item-{i}", i * 0.25) for i in range(1, rows + 1)),
        )
    return conn
