"""A resumable job engine: jobs that stop at the next item on deploy, checkpoint a cursor, and
go on after it, with durable periodic checkpoints, fenced leases and O(1) resume.

    class Backfill(IterationJob):
        def build_enumerator(self, cursor):
            return enumerators.sql_rows(conn, "users", key="id", cursor=cursor)

        def each_iteration(self, user):
            ...

    store = SQLiteStore("progress.db")
    with stop_on_signals(StopSignal()) as stop:
        result = Runner(store, stop=stop).run("backfill-2026-11", Backfill())
"""

from . import enumerators
from .clock import Clock, VirtualClock, WallClock
from .errors import ResumableError, StaleLeaseError
from .job import IterationJob
from .runner import Execution, Pause, Runner, RunResult, Throttle
from .signals import StopSignal, stop_on_signals
from .store import CheckpointStore, JobRecord, Lease, MemoryStore, SQLiteStore

__all__ = [
    "CheckpointStore",
    "Clock",
    "Execution",
    "IterationJob",
    "JobRecord",
    "Lease",
    "MemoryStore",
    "Pause",
    "ResumableError",
    "RunResult",
    "Runner",
    "SQLiteStore",
    "StaleLeaseError",
    "StopSignal",
    "Throttle",
    "VirtualClock",
    "WallClock",
    "enumerators",
    "stop_on_signals",
]
