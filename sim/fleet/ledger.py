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

import numpy as np

from .work import DeployRecord

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
        # unit key -> how many of the unit's items have ever completed (its furthest item), for
        # counting each item once however often it runs; dropped when the unit completes
        self.furthest: dict[str, int] = {}
        self.hung_time = 0.0
        self.hard_kills = 0
        self.crashes = 0
        self.pending: set[int] = set()
        self.retained: dict[int, float] = {}
        self.deploys: list[DeployRecord] = []
        self.horizon = NAN

    # -- records, as things happen ------------------------------------------------------------

    def enqueued(self, job: int, now: float) -> None:
        """The job entered the queue for the first time."""
        self.enqueue_t[job] = now

    def started(self, job: int, now: float) -> None:
        """An attempt of one of the job's units began."""
        self.executions[job] += 1
        if not self.first_start[job] <= now:
            self.first_start[job] = now

    def attempt(self, job: int, elapsed: float, hung: float) -> None:
        """An attempt ended after ``elapsed`` seconds of worker time, ``hung`` of them on a hung
        item."""
        self.work[job] += elapsed
        self.hung_time += hung

    def items_run(self, job: int, unit: str, count: int, reached: int | None = None) -> int:
        """``count`` items of the job's unit ``unit`` (its key) executed, the unit's furthest
        item now ``reached`` (default: count, for attempts that start from scratch). Returns the
        unit's furthest item before these: where a crash that undoes them takes it back to."""
        self.item_execs[job] += count
        reached = count if reached is None else reached
        before = self.furthest.get(unit, 0)
        if reached > before:
            self.unique_items[job] += reached - before
            self.furthest[unit] = reached
        return before

    def items_undo(self, job: int, unit: str, count: int, reached: int) -> None:
        """A crash: ``count`` items of the unit counted ahead of time never finished; its
        furthest item is back to ``reached``."""
        self.item_execs[job] -= count
        before = self.furthest.get(unit, 0)
        if reached < before:
            self.unique_items[job] -= before - reached
            self.furthest[unit] = reached

    def unit_done(self, job: int, unit: str, now: float) -> None:
        """The job's unit ``unit`` completed (it runs no more); the job completes with its last
        unit."""
        self.furthest.pop(unit, None)
        total = self.units.get(job)
        if total is not None:
            done = self._units_done.get(job, 0) + 1
            self._units_done[job] = done
            if done < total:
                return
        if math.isnan(self.done_t[job]):  # a job whose acknowledgement was lost runs again
            self.done_t[job] = now

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
        pending: Iterable[int],
        deploys: list[DeployRecord],
        retained: dict[int, float],
    ) -> None:
        """Record what was still in flight at the horizon (the jobs of the units still queued,
        delayed or running), and freeze the records."""
        self.horizon = horizon
        done = self.done_t
        fail = self.fail_t
        self.pending = {j for j in pending if math.isnan(done[j]) and math.isnan(fail[j])}
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
