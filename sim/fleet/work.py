"""The fleet's values: what the queue holds (``Unit``), a worker slot (``Worker``), the record of
one deploy (``DeployRecord``) and everything random about one replication (``Draws``).

A leaf of ``deploysim.sim.fleet``: the simulation, its engine adapter and the ledger all use
these, and this module uses none of them.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import simpy

from deploysim.strategies.resumable import Runner, StopSignal, VirtualClock

__all__ = ["DeployRecord", "Draws", "Unit", "Worker"]


@dataclass(slots=True, eq=False)
class Unit:
    """What the queue holds: a whole job, or one sub-job of a split job."""

    job: int
    first: int  # index of the unit's first item within the job
    items: int
    item_time: float
    hangs: bool
    ticket: int = 0  # bumped when a delayed re-queue is cancelled or taken over
    key: str = field(init=False)  # the unit's job id in the checkpoint store and the ledger

    def __post_init__(self) -> None:
        self.key = f"{self.job}:{self.first}"

    @property
    def length(self) -> float:
        """Seconds of work in the unit."""
        return self.items * self.item_time


@dataclass(slots=True, eq=False)
class Worker:
    """One worker slot; each restart is a new process life in the same slot."""

    slot: int
    clock: VirtualClock
    proc: simpy.Process | None = None
    state: str = "down"  # down | idle | busy | exiting (after SIGTERM, with no job in hand)
    mode: str = ""  # opaque | engine, while busy
    life: int = 0
    born: float = 0.0  # when the current life's process was ready
    terminating: bool = False
    noticing: bool = False  # a SIGTERM came and the process has not yet acted on it
    stop: StopSignal = field(default_factory=StopSignal)
    exited: simpy.Event | None = None  # triggered when the current life ends
    wait: simpy.Event | None = None  # the idle wait event
    unit: Unit | None = None
    reclaimed: deque[Unit] = field(default_factory=deque)  # its own orphans, run first
    reserved: deque[Unit] = field(default_factory=deque)  # prefetched, run before the queue
    signals: list[float] = field(default_factory=list)  # its crash and restart times, sorted
    kill_at: float = math.inf  # when the SIGKILL after a SIGTERM is due
    acking: Unit | None = None  # a unit that ran to its end, its acknowledgement in flight
    ack_due: float = -math.inf  # when that acknowledgement reaches the broker
    runner: Runner | None = None  # the engine's runner of the current life (resumable only)

    @property
    def name(self) -> str:
        """The worker's owner name in the checkpoint store (the same in every life)."""
        return f"w{self.slot}"


@dataclass(slots=True)
class DeployRecord:
    """One deploy: when it began, when its last worker exited, how many were SIGKILLed."""

    start: float
    end: float = math.nan
    hard_kills: int = 0


@dataclass(frozen=True)
class Draws:
    """Everything random about one replication, drawn once and shared by every strategy:
    the jobs (sorted arrival times, lengths, items, hang flags), the deploy times, and each
    worker slot's daily restart and crash times (one array per slot, from slot 0; a slot
    without an array has none).

    ``ready`` replays a real run's platform: per slot, the time each of its processes (the
    first, second, ...) was ready, the first one's at or before 0; ``first_fetch`` is what a
    ready process took to its first job. A process that exits before its replacement's time
    (plus ``first_fetch``) waits for it; one that exits after it, or past the slot's last time,
    is replaced ``restart_delay`` after its exit, as without ``ready``. A process's clock (what
    ``Strategy.notice_every`` counts from) starts at its ready time.

    ``seed`` seeds the random choices a strategy leaves to chance while the fleet runs (a
    Dramatiq maintenance on a broker command), the same for every strategy."""

    arrivals: np.ndarray
    lengths: np.ndarray
    items: np.ndarray
    hangs: np.ndarray
    deploys: np.ndarray
    restarts: Sequence[np.ndarray] = ()
    crashes: Sequence[np.ndarray] = ()
    ready: Sequence[np.ndarray] = ()
    first_fetch: float = 0.0
    seed: int = 0
