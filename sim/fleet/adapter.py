"""The resumable engine inside the simulated fleet: a checkpoint store with a write latency
(``SimStore``), a job of items of fixed length as the engine sees it (``SimJob``), and the
engine's ``Runner`` set up from the simulated strategy's policy (``engine_runner``).

Nothing here re-implements the engine (docs/architecture.md, principle 1): the fleet drives
the real ``Runner`` under a virtual clock per worker, and this module only gives it a store, a
job and the policy's settings.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from deploysim.strategies.resumable import (
    Execution,
    IterationJob,
    Lease,
    MemoryStore,
    Runner,
    StopSignal,
    VirtualClock,
)
from deploysim.strategies.resumable_model import Resumable

from .ledger import Ledger
from .work import Unit

__all__ = ["ITEM_SLACK", "Hang", "SimJob", "SimStore", "engine_runner"]

INF = math.inf

ITEM_SLACK = 1e-9
"""Items, of float error forgiven when a span of time is turned into a whole number of items.
Times are float sums of item times, so a span that holds exactly k items can divide out to
k - 1e-12 (or k + 1e-12): counting the items a span finished rounds up when it is this close
below a whole number, and counting the items needed to reach a time rounds down when it is this
close above one, so an item that ends exactly at a signal or a checkpoint counts as ending then."""


class Hang(BaseException):
    """Raised out of a hung item: it never returns; only SIGKILL ends it. A BaseException, so
    the engine does not record it as the job's failure."""


class SimStore(MemoryStore):
    """The engine's MemoryStore with the latency of a real one: a checkpoint takes ``cost``
    seconds of its worker's clock and is durable only at its end. ``crash(job, at)`` drops the
    last write if it was not yet durable at time ``at``. ``clocks`` holds each worker's clock,
    by owner name."""

    def __init__(self, cost: float, clocks: dict[str, VirtualClock]) -> None:
        super().__init__()
        self.cost = float(cost)
        self.clocks = clocks
        self._pending: dict[str, tuple[float, Any]] = {}
        if not self.cost:  # durable at once: the runner writes only before the next signal
            self.checkpoint = super().checkpoint  # type: ignore[method-assign]

    def checkpoint(
        self,
        lease: Lease,
        *,
        cursor_json: str | None,
        status: str,
        items_done: int,
        run_time: float,
        interruptions: int,
        now: float,
        ttl: float,
        error: str | None = None,
    ) -> Lease:
        """Write after ``cost`` seconds of the writer's clock (``now`` is read off that clock,
        once the write has taken its time)."""
        clock = self.clocks[lease.owner]
        clock.advance(self.cost)
        row = self._jobs.get(lease.job_id)
        previous = None if row is None else list(row)
        now = clock.now()
        lease = super().checkpoint(
            lease,
            cursor_json=cursor_json,
            status=status,
            items_done=items_done,
            run_time=run_time,
            interruptions=interruptions,
            now=now,
            ttl=ttl,
            error=error,
        )
        self._pending[lease.job_id] = (now, previous)
        return lease

    def crash(self, job_id: str, at: float) -> Any:
        """The process writing ``job_id`` died at ``at``: undo a write not yet durable then."""
        committed, previous = self._pending.pop(job_id, (-INF, None))
        if committed > at and previous is not None:
            self._jobs[job_id] = previous
        return self.get(job_id)


def engine_runner(
    store: SimStore, policy: Resumable, owner: str, clock: VirtualClock, stop: StopSignal
) -> Runner:
    """The engine's runner for one run of a job by worker ``owner``, with the policy's
    checkpoint interval, run-time limit and lease."""
    return Runner(
        store,
        owner=owner,
        clock=clock,
        stop=stop,
        checkpoint_every=policy.checkpoint_every,
        max_runtime=policy.max_runtime,
        lease_ttl=policy.lease_ttl,
    )


Chunk = tuple[int, int, "list[tuple[int, bool]] | None"]
"""A chunk of a ``SimJob``: its first item, its count, and its parts when it was coalesced."""


class SimJob(IterationJob):
    """A job of ``unit.items`` items of ``unit.item_time`` seconds each, as the engine sees it.
    Items come in chunks that end at the first item boundary at or after the next moment
    anything could change (``until``: the simulator's next possible signal, a due checkpoint,
    the run-time limit); each chunk's items are recorded in ``ledger``. A checkpoint takes
    ``write_cost`` seconds of ``clock``.

    With ``coalesce`` (the default), a chunk runs on through the checkpoints that nothing can
    observe: those whose successor, written by the runner, is durable before ``until``, when no
    signal can have come. Their writes are skipped; their cost is charged on the clock, in the
    same order of additions as the runner's writes would have made, so the clock, the ledger and
    every write that can be observed are what they are without it (``tests`` hold the two
    equal). A job then costs the runner a chunk per signal it might meet, not per checkpoint.
    The engine counts a chunk as one item."""

    def __init__(self, unit: Unit, clock: VirtualClock, ledger: Ledger, write_cost: float,
                 coalesce: bool = True) -> None:
        self.unit = unit
        self.clock = clock
        self.ledger = ledger
        self.write_cost = write_cost
        self.coalesce = coalesce
        self.execution: Execution | None = None
        self.until = INF
        self.hung_since = INF
        # a hung job hangs on an item at a fixed point of its work: half way
        self.hang_at = unit.items // 2 if unit.hangs else -1
        self._chunk: tuple[float, int, int, int] | None = None

    def build_enumerator(self, cursor: Any) -> Iterator[tuple[Chunk, int]]:
        return self._chunks(0 if cursor is None else int(cursor) + 1)

    def _count(self, i: int, t: float, limit: float) -> int:
        """Items from item ``i``, started at ``t``, to the first boundary at or after ``limit``
        (at least one, at most what is left, and not past the hung item)."""
        n = self.unit.items
        d = self.unit.item_time
        k = math.ceil((limit - t) / d - ITEM_SLACK) if d else n - i  # no time: all at once
        if k < 1:
            k = 1
        if k > n - i:
            k = n - i
        if i <= self.hang_at < i + k:
            k = max(1, self.hang_at - i)
        return k

    def _chunks(self, i: int) -> Iterator[tuple[Chunk, int]]:
        n = self.unit.items
        now = self.clock.now
        execution = self.execution
        assert execution is not None, "the execution is set before the runner asks for items"
        write = self.write_cost
        coalesce = self.coalesce and self.hang_at < 0 and self.unit.item_time > 0
        while i < n:
            t = now()
            due = execution.next_checkpoint_at
            if due <= t:  # a write is due before this chunk runs; the chunk starts after it
                t += write
                due = t + execution.checkpoint_interval
            limit = self.until
            if due < limit:
                limit = due
            if execution.deadline < limit:
                limit = execution.deadline
            k = self._count(i, t, limit)
            parts = None
            if coalesce and limit == due:
                parts = self._coalesced(i, t, k, due)
                if parts is not None:
                    k = sum(part for part, _ in parts)
            yield (i, k, parts), i + k - 1
            i += k

    def _coalesced(self, i: int, t: float, k: int, due: float) -> list[tuple[int, bool]] | None:
        """The parts of a chunk from item ``i`` at ``t`` whose first part, ``k`` items, ends at
        the checkpoint due at ``due``: the runner's own decisions after each part are played
        forward (a signal at ``until``, the run-time limit, the job's end, a due checkpoint and
        its write), and the chunk runs on to the last part after which the runner writes a
        checkpoint, or ends the run, durable before ``until``. Each part is its items and
        whether a write (skipped) followed it; None when the chunk is its first part alone."""
        assert self.execution is not None
        n = self.unit.items
        d = self.unit.item_time
        write = self.write_cost
        until = self.until
        deadline = self.execution.deadline
        interval = self.execution.checkpoint_interval
        parts = [k]
        writes: list[bool] = []
        best = 1
        end = t + k * d
        i += k
        ceil = math.ceil
        while end < until:
            if end >= deadline or i >= n:  # the runner interrupts, or completes, here
                if end + write < until:
                    best = len(parts)
                break
            if end >= due:  # a checkpoint is due: the runner writes it
                if not end + write < until:
                    break
                best = len(parts)
                t = end + write
                due = t + interval
                writes.append(True)
            else:  # a boundary a hair short of the due time: the runner goes on, writing nothing
                t = end
                writes.append(False)
            limit = until
            if due < limit:
                limit = due
            if deadline < limit:
                limit = deadline
            k = ceil((limit - t) / d - ITEM_SLACK)  # as _count, with no hung item to mind
            if k < 1:
                k = 1
            if k > n - i:
                k = n - i
            parts.append(k)
            end = t + k * d
            i += k
        if best == 1:
            return None
        # the last part's write, or the run's end, is the runner's own
        return list(zip(parts[:best], [*writes[:best - 1], False], strict=True))

    def each_iteration(self, item: Chunk) -> None:
        i, k, parts = item
        if i == self.hang_at:
            raise Hang
        unit = self.unit
        clock = self.clock
        start = clock.now()
        if parts is None:
            clock.advance(k * unit.item_time)
        else:  # the parts' items and the skipped writes, added up as the runner's would be
            d = unit.item_time
            write = self.write_cost
            for part, written in parts:
                clock.advance(part * d)
                if written and write:
                    clock.advance(write)
        before = self.ledger.items_run(unit.job, unit.key, k, i + k)
        self._chunk = (start, i, k, before)

    def crash(self, at: float) -> None:
        """Undo the item executions that had not finished by ``at``."""
        if self._chunk is None:
            return
        t0, i, k, done_before = self._chunk
        unit = self.unit
        d = unit.item_time
        finished = min(k, max(0, int((at - t0) / d + ITEM_SLACK))) if d else k
        if finished < k:
            self.ledger.items_undo(
                unit.job, unit.key, k - finished, max(done_before, i + finished)
            )
