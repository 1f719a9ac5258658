"""A resumable job engine: jobs that stop at the next item on deploy, checkpoint a cursor, and
go on after it, with durable periodic checkpoints, fenced leases and O(1) resume.

    from deploysim.strategies.resumable import (
        IterationJob, Runner, SQLiteStore, StopSignal, enumerators, stop_on_signals,
    )

    class Backfill(IterationJob):
        def build_enumerator(self, cursor):
            return enumerators.sql_rows(conn, "users", key="id", cursor=cursor)

        def each_iteration(self, user):
            ...

    store = SQLiteStore("progress.db")
    with stop_on_signals(StopSignal()) as stop:
        result = Runner(store, stop=stop).run("backfill-2026-11", Backfill())

The user reference is docs/engine.md. The engine needs only the standard library
(``RedisStore`` needs the ``redis`` package, ``pip install 'deploysim[redis]'``, and
``PostgresStore`` psycopg 3, ``pip install 'deploysim[postgres]'``); the testing
helpers in ``deploysim.strategies.resumable.testing`` use hypothesis for their schedules.
"""

from . import enumerators
from .clock import Clock as Clock
from .clock import VirtualClock as VirtualClock
from .clock import WallClock as WallClock
from .errors import LeaseHeldError, ResumableError, StaleLeaseError, StopRequestedError
from .job import IterationJob
from .postgres_store import PostgresStore
from .redis_store import RedisStore
from .runner import Execution as Execution
from .runner import Pause as Pause
from .runner import Runner, RunResult, Throttle
from .signals import StopSignal, stop_on_signals
from .store import (
    CheckpointStore,
    JobRecord,
    Lease,
    MemoryStore,
    SQLiteStore,
    TransactionalStore,
)
from .urls import local_store, open_store

# What a job's author needs. The clocks, ``Execution`` (the step-wise run the simulator drives)
# and ``Pause`` (how ``enumerators.throttle`` interrupts a job) stay importable from here, as
# the redundant aliases above say, but are not part of this surface.
__all__ = [
    "CheckpointStore",
    "IterationJob",
    "JobRecord",
    "Lease",
    "LeaseHeldError",
    "MemoryStore",
    "PostgresStore",
    "RedisStore",
    "ResumableError",
    "RunResult",
    "Runner",
    "SQLiteStore",
    "StaleLeaseError",
    "StopRequestedError",
    "StopSignal",
    "Throttle",
    "TransactionalStore",
    "enumerators",
    "local_store",
    "open_store",
    "stop_on_signals",
]
