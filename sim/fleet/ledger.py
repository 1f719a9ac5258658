"""The ledger: what happened to every job, counted from independent records.

Enqueues, attempt starts, item executions, completions, failures and explicit losses are each
recorded where they happen; what was still queued, delayed or running at the horizon is read off
the simulator's structures at the end. ``lost`` is then derived, never assumed:
``lost = enqueued - completed - failed - pending`` (after Jepsen's total-queue checker), and the
explicit loss records are kept to cross-check it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .simulation import Unit

NAN = math.nan


class Ledger:
    """Per-job records of one simulation run, as plain lists (cheap to update one at a time)
    turned into numpy arrays by ``close``."""

    def __init__(self, arrivals: np.ndarray, lengths: np.ndarray, items: np.ndarray) -> None:
        n = len(arrivals)
        self.n = n
        self.lengths = np.asarray(lengths, dtype=float)
        self.items = np.asarray(items, dtype=np.int64)
        self.enqueue_t = [NAN] * n
        self.first_start = [NAN] * n
        self.done_t = [NAN] * n
        self.fail_t = [NAN] * n
        self.lost_t = [NAN] * n
        self.executions = [0] * n
        self.item_execs = [0] * n
        self.unique_items = [0] * n
        self.work = [0.0] * n
        self.units: dict[int, int] = {}  # job -> number of sub-jobs, for split jobs
        self._units_done: dict[int, int] = {}
        self.hung_time = 0.0
        self.hard_kills = 0
        self.crashes = 0
        self.pending: set[int] = set()
        self.retained: dict[int, float] = {}
        self.deploys: list[Any] = []
        self.horizon = NAN

    # -- records, as things happen ------------------------------------------------------------

    def enqueued(self, job: int, now: float) -> None:
        """The job entered the queue for the first time."""
        self.enqueue_t[job] = now

    def started(self, unit: Unit, now: float) -> None:
        """An attempt of the unit began."""
        j = unit.job
        self.executions[j] += 1
        if not self.first_start[j] <= now:
            self.first_start[j] = now

    def attempt(self, unit: Unit, elapsed: float, hung: float) -> None:
        """An attempt ended after ``elapsed`` seconds of worker time, ``hung`` of them on a hung
        item."""
        self.work[unit.job] += elapsed
        self.hung_time += hung

    def items_run(self, unit: Unit, count: int, reached: int | None = None) -> None:
        """``count`` items executed, the unit's furthest item now ``reached`` (default: count,
        for attempts that start from scratch)."""
        j = unit.job
        self.item_execs[j] += count
        reached = count if reached is None else reached
        if reached > unit.done:
            self.unique_items[j] += reached - unit.done
            unit.done = reached

    def items_undo(self, unit: Unit, count: int, reached: int) -> None:
        """A crash: ``count`` items counted ahead of time never finished."""
        j = unit.job
        self.item_execs[j] -= count
        if reached < unit.done:
            self.unique_items[j] -= unit.done - reached
            unit.done = reached

    def unit_done(self, unit: Unit, now: float) -> None:
        """The unit completed; the job completes with its last unit."""
        j = unit.job
        total = self.units.get(j)
        if total is not None:
            done = self._units_done.get(j, 0) + 1
            self._units_done[j] = done
            if done < total:
                return
        self.done_t[j] = now

    def failed(self, job: int, now: float) -> None:
        """The job went to the failed queue."""
        if math.isnan(self.fail_t[job]):
            self.fail_t[job] = now

    def lost(self, job: int, now: float) -> None:
        """The model dropped the job (kept to cross-check the derived count)."""
        if math.isnan(self.lost_t[job]):
            self.lost_t[job] = now

    def close(
        self,
        horizon: float,
        pending_units: Iterable[Unit],
        deploys: list[Any],
        retained: dict[int, float],
    ) -> None:
        """Record what was still in flight at the horizon, and freeze the records."""
        self.horizon = horizon
        done = self.done_t
        fail = self.fail_t
        self.pending = {
            u.job for u in pending_units if math.isnan(done[u.job]) and math.isnan(fail[u.job])
        }
        self.deploys = deploys
        self.retained = retained

    # -- derived views ------------------------------------------------------------------------

    def arrays(self) -> dict[str, np.ndarray]:
        """The per-job records as numpy arrays."""
        return {
            "length": self.lengths,
            "items": self.items,
            "enqueue_t": np.array(self.enqueue_t),
            "first_start": np.array(self.first_start),
            "done_t": np.array(self.done_t),
            "fail_t": np.array(self.fail_t),
            "lost_t": np.array(self.lost_t),
            "executions": np.array(self.executions, dtype=np.int64),
            "item_execs": np.array(self.item_execs, dtype=np.int64),
            "unique_items": np.array(self.unique_items, dtype=np.int64),
            "work": np.array(self.work),
        }
