"""A first look at the resumable engine: total up a table of orders, interrupt, resume.

``run_demo`` creates (once) a SQLite file holding ``orders``, then runs a resumable job that
reads them in key order and writes one row per order into ``order_totals``. The job runs in
exactly-once mode: each total is written through the checkpoint store's own connection, so it
commits together with the cursor. Ctrl-C (SIGINT) or SIGTERM stops the job at the next order
with its progress saved; running the demo again resumes from the cursor. At the end of every
run the demo reads the database back and checks that each order up to the cursor has exactly
one total and no order after it has any.

``order_totals`` deliberately has no unique constraint: a duplicate would be stored, and
counted, rather than refused.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from deploysim.strategies.resumable import (
    IterationJob,
    Runner,
    SQLiteStore,
    StopSignal,
    stop_on_signals,
)
from deploysim.strategies.resumable.enumerators.sql import sql_rows

from .errors import SimError

JOB_ID = "demo-order-totals"
"""The demo job's id in the checkpoint store."""

OWNER = "deploysim-demo"
"""The lease owner of every demo run, so that a run killed outright (kill -9) does not keep
the next one waiting for its lease to expire."""

VAT = 0.20
"""The tax each total adds to an order's amount."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id           INTEGER PRIMARY KEY,
    customer     TEXT NOT NULL,
    amount_cents INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS order_totals (
    order_id    INTEGER NOT NULL,
    total_cents INTEGER NOT NULL,
    run         INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What one call of ``run_demo`` did and what the database holds afterwards.

    ``status`` is the run's: "completed", "interrupted" or "failed". ``position`` is the number
    of orders up to the durable cursor, ``resumed_at`` the position this run started from (None
    on a fresh start), ``items`` the orders processed by this run, ``per_run`` the orders
    whose totals each run committed, oldest run first (runs that committed none are left
    out). ``totals`` counts the rows of ``order_totals``; ``missing`` the orders up to the cursor
    without a total, ``duplicates`` the totals beyond one per order, ``ahead`` the totals of
    orders after the cursor.
    """

    db_path: str
    status: str
    rows: int
    position: int
    resumed_at: int | None
    items: int
    per_run: tuple[int, ...]
    totals: int
    missing: int
    duplicates: int
    ahead: int
    reason: str

    @property
    def exactly_once(self) -> bool:
        """True when every order up to the cursor has exactly one total and no other has one."""
        return self.missing == 0 and self.duplicates == 0 and self.ahead == 0

    @property
    def completed(self) -> bool:
        """True when the job has processed every order."""
        return self.status == "completed"


class OrderTotals(IterationJob):
    """Reads ``orders`` in id order and writes each order's total with VAT to ``order_totals``
    through ``connection``, after ``item_time`` seconds of pretend work."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        item_time: float,
        run: int,
        on_item: Callable[[], None],
    ) -> None:
        self.connection = connection
        self.item_time = item_time
        self.run = run
        self.on_item = on_item

    def build_enumerator(self, cursor: Any) -> Iterable[tuple[dict[str, Any], list[Any]]]:
        """The orders after ``cursor`` (``[id]`` of the last order done), in id order."""
        return sql_rows(self.connection, "orders", key="id", cursor=cursor, batch_size=500)

    def each_iteration(self, item: dict[str, Any]) -> None:
        """Work on one order, then write its total."""
        if self.item_time > 0:
            time.sleep(self.item_time)
        total = round(item["amount_cents"] * (1 + VAT))
        self.connection.execute(
            "INSERT INTO order_totals (order_id, total_cents, run) VALUES (?, ?, ?)",
            (item["id"], total, self.run),
        )
        self.on_item()


def _check_arguments(rows: int, item_time: float, interrupt_after: float | None) -> None:
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise SimError(f"rows={rows!r}: must be a whole number of orders, at least 1")
    if not isinstance(item_time, (int, float)) or not 0 <= item_time < float("inf"):
        raise SimError(f"item_time={item_time!r}: must be a number of seconds >= 0")
    if interrupt_after is not None and not (
        isinstance(interrupt_after, (int, float)) and 0 < interrupt_after < float("inf")
    ):
        raise SimError(
            f"interrupt_after={interrupt_after!r}: must be a positive number of seconds or None"
        )


def _prepare(store: SQLiteStore, rows: int, reset: bool, report: Callable[[str], None]) -> int:
    """Create the tables and orders if need be (after dropping them on ``reset``); return the
    number of orders."""
    c = store.connection
    if reset:
        c.execute("DROP TABLE IF EXISTS order_totals")
        c.execute("DROP TABLE IF EXISTS orders")
        if store.get(JOB_ID) is not None:
            store.reset(JOB_ID)
        report(f"reset: dropped the orders, their totals and the job's progress in {store.path}")
    c.executescript(_SCHEMA)
    existing = c.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
    if existing == 0:
        rng = random.Random(2026)
        c.execute("BEGIN IMMEDIATE")
        c.executemany(
            "INSERT INTO orders (id, customer, amount_cents) VALUES (?, ?, ?)",
            (
                (i, f"customer-{rng.randrange(1, 200):03d}", rng.randrange(100, 50_000))
                for i in range(1, rows + 1)
            ),
        )
        c.execute("COMMIT")
        report(f"created {store.path} with {rows} orders to total up")
        return rows
    if existing != rows:
        raise SimError(
            f"rows={rows}: {store.path} already holds {existing} orders; run with "
            f"rows={existing} (--rows {existing}) to go on, or with reset (--reset) to start "
            f"over with {rows}"
        )
    return existing


def _position(c: sqlite3.Connection, cursor: Any) -> int:
    """The number of orders up to and including ``cursor``."""
    if cursor is None:
        return 0
    return int(c.execute("SELECT COUNT(*) FROM orders WHERE id <= ?", (cursor[0],)).fetchone()[0])


def _audit(c: sqlite3.Connection, cursor: Any) -> tuple[int, int, int, int]:
    """``(totals, missing, duplicates, ahead)`` as the database holds them now."""
    last = -1 if cursor is None else cursor[0]
    totals, distinct = c.execute(
        "SELECT COUNT(*), COUNT(DISTINCT order_id) FROM order_totals"
    ).fetchone()
    missing = c.execute(
        "SELECT COUNT(*) FROM orders o WHERE o.id <= ? AND NOT EXISTS "
        "(SELECT 1 FROM order_totals t WHERE t.order_id = o.id)",
        (last,),
    ).fetchone()[0]
    ahead = c.execute("SELECT COUNT(*) FROM order_totals WHERE order_id > ?", (last,)).fetchone()[0]
    return int(totals), int(missing), int(totals - distinct), int(ahead)


def run_demo(
    db_path: str = "demo.db",
    rows: int = 2000,
    item_time: float = 0.005,
    interrupt_after: float | None = None,
    *,
    reset: bool = False,
    report: Callable[[str], None] | None = None,
    progress: bool = True,
) -> DemoSummary:
    """Run (or resume) the demo job on ``db_path`` and return what happened.

    ``rows`` orders are created on first use; each takes ``item_time`` seconds. Ctrl-C or
    SIGTERM stops the job at the next order; ``interrupt_after`` seconds sends this process a
    SIGINT to show the same thing without a keyboard. ``reset`` drops the orders, totals and
    progress first. Messages for a person go to ``report``; ``progress`` shows a tqdm bar on
    stderr. Must be called from the main thread (it installs signal handlers).
    """
    _check_arguments(rows, item_time, interrupt_after)
    say = report or (lambda _message: None)
    with SQLiteStore(db_path) as store:
        c = store.connection
        rows = _prepare(store, rows, reset, say)
        before = store.get(JOB_ID)
        start_at = None if before is None else _position(c, before.cursor)
        run = 1 if before is None else before.executions + (before.status != "completed")
        if before is not None and before.status == "completed":
            say(f"the job already completed all {rows} orders; run with reset to start over")
        elif start_at:
            _, _, duplicates, _ = _audit(c, before.cursor if before else None)
            say(f"resumed at row {start_at} of {rows}, {duplicates} duplicates")
        else:
            say(f"starting at row 0 of {rows}: press Ctrl-C to interrupt, then run again to resume")

        stop = StopSignal()
        runner = Runner(
            store, owner=OWNER, stop=stop, exactly_once=True, checkpoint_every=2.0, batch=100
        )
        timer: threading.Timer | None = None
        with stop_on_signals(stop):
            if interrupt_after is not None:
                say(f"sending this process SIGINT in {interrupt_after:g} s")
                timer = threading.Timer(interrupt_after, os.kill, (os.getpid(), signal.SIGINT))
                timer.daemon = True
                timer.start()
            bar = tqdm(
                total=rows,
                initial=start_at or 0,
                unit="order",
                desc="order totals",
                disable=not progress,
                dynamic_ncols=True,
            )
            job = OrderTotals(c, float(item_time), run, lambda: bar.update(1))
            try:
                result = runner.run(JOB_ID, job)
            finally:
                bar.close()
                if timer is not None:
                    timer.cancel()
                    timer.join()

        position = _position(c, result.cursor)
        totals, missing, duplicates, ahead = _audit(c, result.cursor)
        per_run = tuple(
            int(n)
            for (n,) in c.execute("SELECT COUNT(*) FROM order_totals GROUP BY run ORDER BY run")
        )
        summary = DemoSummary(
            db_path=str(db_path),
            status=result.status,
            rows=rows,
            position=position,
            resumed_at=start_at or None,
            items=result.items,
            per_run=per_run,
            totals=totals,
            missing=missing,
            duplicates=duplicates,
            ahead=ahead,
            reason=result.reason,
        )
    if result.interrupted:
        say(
            f"interrupted at row {position} of {rows} ({result.reason}): progress saved; "
            "run again to resume"
        )
    elif result.failed:
        say(f"failed at row {position} of {rows}: {result.reason}")
    elif result.items:
        runs = " + ".join(f"{n}" for n in per_run)
        say(f"completed all {rows} orders in {len(per_run)} run(s) ({runs} orders)")
    if summary.exactly_once:
        say(
            f"verified in {db_path}: each of the {position} orders done has exactly one "
            f"total, and none after the cursor has one ({totals} totals, 0 duplicates)"
        )
    else:
        say(
            f"CHECK FAILED in {db_path}: {missing} orders missing a total, {duplicates} "
            f"duplicate totals, {ahead} totals after the cursor"
        )
    return summary
