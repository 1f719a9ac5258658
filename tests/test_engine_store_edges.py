"""Checkpoint stores at their edges: one store shared by threads, commits inside an exactly-once
batch, generations after a deleted row, waits for a locked file, files that are not stores."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from deploysim.strategies.resumable import (
    IterationJob,
    MemoryStore,
    ResumableError,
    Runner,
    SQLiteStore,
    StaleLeaseError,
    VirtualClock,
)
from deploysim.strategies.resumable import enumerators as en
from deploysim.strategies.resumable.errors import StopRequestedError

JOB = "job-1"


class _Count(IterationJob):
    def __init__(self, n: int) -> None:
        self.n = n

    def build_enumerator(self, cursor):
        return en.int_range(0, self.n, cursor=cursor)

    def each_iteration(self, item) -> None:
        pass


def write(store, lease, *, cursor="0", status="running", items=1, now=1.0, ttl=60.0):
    """A checkpoint with defaults for what the test does not care about."""
    return store.checkpoint(lease, cursor_json=cursor, status=status, items_done=items,
                            run_time=now, interruptions=0, now=now, ttl=ttl)


@pytest.fixture(params=["sqlite-memory", "sqlite-file"])
def sqlite_store(request, tmp_path):
    path = ":memory:" if request.param == "sqlite-memory" else str(tmp_path / "progress.db")
    with SQLiteStore(path) as s:
        s.connection.execute("CREATE TABLE effects (job TEXT, n INTEGER)")
        yield s


class Effects(IterationJob):
    """Writes one effect row per item through the store's connection, as ``write`` says."""

    def __init__(self, store, job, n, how="plain", pause=0.0):
        self.store, self.job, self.n, self.how, self.pause = store, job, n, how, pause

    def build_enumerator(self, cursor):
        return en.int_range(0, self.n, cursor=cursor)

    def each_iteration(self, item):
        c = self.store.connection
        sql, args = "INSERT INTO effects VALUES (?, ?)", (self.job, item)
        if self.how == "with":
            with c:
                c.execute(sql, args)
        elif self.how == "commit":
            c.execute(sql, args)
            c.commit()
        elif self.how == "sql-commit" and item == 2:
            c.execute(sql, args)
            c.execute("COMMIT")
        else:
            c.execute(sql, args)
        if self.pause:
            time.sleep(self.pause)  # lets the other thread in mid-batch


def effects(store, job=JOB):
    return [n for (n,) in store.connection.execute(
        "SELECT n FROM effects WHERE job = ? ORDER BY rowid", (job,))]


# -- one store object, several threads -----------------------------------------------------------


def test_a_second_thread_cannot_end_an_open_exactly_once_batch(tmp_path):
    path = str(tmp_path / "shared.db")
    store = SQLiteStore(path)
    store.connection.execute("CREATE TABLE effects (job TEXT, n INTEGER)")
    lease, _ = store.acquire("a", "w1", 0.0, 60.0)
    store.begin()
    store.connection.execute("INSERT INTO effects VALUES ('a', 1)")
    refused = []

    def other_thread():
        for call in (lambda: store.acquire("b", "w2", 0.0, 60.0), store.begin,
                     lambda: store.reset("a")):
            try:
                call()
            except ResumableError as exc:
                refused.append(str(exc))
        store.rollback()  # a failing runner's clean-up: must leave the other batch alone

    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    assert len(refused) == 3
    assert all(path in m and "another thread" in m and "its own SQLiteStore" in m
               for m in refused)
    write(store, lease, cursor="1", status="completed")
    assert effects(store, "a") == [1]
    assert store.get("a").cursor == 1
    assert store.get("b") is None
    store.close()


def test_exactly_once_runners_in_threads_keep_every_effect_once(tmp_path):
    """Two threads running exactly-once jobs: on one shared store object one of them is
    refused (never a lost or doubled effect), and with a store object per thread both
    complete, every effect written once."""
    path = str(tmp_path / "threads.db")
    with SQLiteStore(path) as setup:
        setup.connection.execute("CREATE TABLE effects (job TEXT, n INTEGER)")
    n = 300

    def run_all(stores):
        errors: dict[str, list[str]] = {"a": [], "b": []}

        def work(job_id, store):
            for _ in range(50):
                try:
                    if Runner(store, exactly_once=True, batch=7, owner=f"o-{job_id}").run(
                            job_id, Effects(store, job_id, n, pause=0.0002)).completed:
                        return
                except ResumableError as exc:
                    errors[job_id].append(str(exc))
                    time.sleep(0.001)

        pairs = zip("ab", stores, strict=True)
        threads = [threading.Thread(target=work, args=pair) for pair in pairs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return errors

    shared = SQLiteStore(path)
    errors = run_all([shared, shared])
    for job_id in "ab":
        record = shared.get(job_id)
        done = effects(shared, job_id)
        assert len(done) == len(set(done))  # never an effect twice
        if record is not None and record.status == "completed":
            assert done == list(range(n)) and record.cursor == n - 1
        else:  # refused: nothing beyond the durable cursor was kept
            cursor = None if record is None else record.cursor
            assert done == list(range(0 if cursor is None else cursor + 1))
    refusals = errors["a"] + errors["b"]
    assert all("another thread" in m for m in refusals)
    shared.close()

    with SQLiteStore(path) as s:
        s.connection.execute("DELETE FROM effects")
        s.connection.execute("DELETE FROM resumable_jobs")
    own = [SQLiteStore(path), SQLiteStore(path)]
    assert run_all(own) == {"a": [], "b": []}
    for job_id in "ab":
        assert own[0].get(job_id).status == "completed"
        assert effects(own[0], job_id) == list(range(n))
    for s in own:
        s.close()


# -- committing inside an exactly-once batch ------------------------------------------------------


@pytest.mark.parametrize("how", ["with", "commit"])
def test_committing_inside_each_iteration_in_exactly_once_mode_fails_and_keeps_nothing(
        sqlite_store, how):
    with pytest.raises(ResumableError, match="without committing") as info:
        Runner(sqlite_store, clock=VirtualClock(), exactly_once=True, batch=5).run(
            JOB, Effects(sqlite_store, JOB, 20, how))
    assert repr(sqlite_store.path) in str(info.value)
    assert effects(sqlite_store) == []
    record = sqlite_store.get(JOB)
    assert record.status == "failed" and record.cursor is None


def test_a_commit_in_sql_inside_each_iteration_fails_the_batchs_checkpoint(sqlite_store):
    with pytest.raises(ResumableError, match="committed or rolled back before its checkpoint"):
        Runner(sqlite_store, clock=VirtualClock(), exactly_once=True, batch=5).run(
            JOB, Effects(sqlite_store, JOB, 20, "sql-commit"))
    record = sqlite_store.get(JOB)
    assert record.status == "failed" and record.cursor is None


def test_with_connection_outside_exactly_once_mode_still_commits(sqlite_store):
    result = Runner(sqlite_store, clock=VirtualClock(), checkpoint_every_items=5).run(
        JOB, Effects(sqlite_store, JOB, 12, "with"))
    assert result.completed
    assert effects(sqlite_store) == list(range(12))
    with sqlite_store.connection:  # no batch open: an ordinary commit
        sqlite_store.connection.execute("INSERT INTO effects VALUES ('x', 1)")
    assert effects(sqlite_store, "x") == [1]


# -- generations never repeat ---------------------------------------------------------------------


def _delete_row(store, job_id):
    """What an operator starting over by hand does: remove the job's row."""
    if isinstance(store, MemoryStore):
        store._jobs.pop(job_id)
    else:
        store.connection.execute("DELETE FROM resumable_jobs WHERE job_id = ?", (job_id,))


@pytest.fixture(params=["memory", "sqlite-memory", "sqlite-file"])
def any_store(request, tmp_path):
    if request.param == "memory":
        yield MemoryStore()
        return
    path = ":memory:" if request.param == "sqlite-memory" else str(tmp_path / "progress.db")
    with SQLiteStore(path) as s:
        yield s


def test_a_deleted_row_does_not_reopen_the_fence_for_an_old_lease(any_store):
    old, _ = any_store.acquire(JOB, "zombie", 0.0, 1.0)
    _delete_row(any_store, JOB)
    fresh, record = any_store.acquire(JOB, "new", 5.0, 60.0)
    assert record.status == "pending" and fresh.generation > old.generation
    write(any_store, fresh, cursor="29", status="completed", items=30, now=6.0)
    with pytest.raises(StaleLeaseError):
        write(any_store, old, cursor="999", status="completed", items=1000, now=7.0)
    record = any_store.get(JOB)
    assert record.cursor == 29 and record.status == "completed"


def test_generations_are_drawn_store_wide_and_never_handed_out_twice(any_store):
    seen = []
    for i in range(3):
        for job in ("a", "b"):
            lease, _ = any_store.acquire(job, "w", float(i), 60.0)
            seen.append(lease.generation)
            write(any_store, lease, status="interrupted", now=float(i))
        any_store.delete("a")
        any_store.reset("b")
    assert len(seen) == len(set(seen)) and seen == sorted(seen)
    assert any_store.get("a") is None and any_store.get("b").status == "pending"


def test_an_old_store_file_gets_a_counter_seeded_above_its_generations(tmp_path):
    path = str(tmp_path / "old.db")
    c = sqlite3.connect(path)
    c.executescript("""
        CREATE TABLE resumable_jobs (
            job_id TEXT PRIMARY KEY, status TEXT NOT NULL DEFAULT 'pending', cursor TEXT,
            executions INTEGER NOT NULL DEFAULT 0, interruptions INTEGER NOT NULL DEFAULT 0,
            items_done INTEGER NOT NULL DEFAULT 0, run_time REAL NOT NULL DEFAULT 0, owner TEXT,
            generation INTEGER NOT NULL DEFAULT 0, lease_expires REAL NOT NULL DEFAULT 0,
            error TEXT, updated_at REAL NOT NULL DEFAULT 0);
        INSERT INTO resumable_jobs (job_id, status, cursor, generation, owner, lease_expires)
            VALUES ('job-1', 'running', '5', 7, 'zombie', 1.0), ('job-2', 'completed', '9', 3,
            NULL, 0);
    """)
    c.close()
    with SQLiteStore(path) as store:
        assert store.get("job-2").cursor == 9  # what was stored is kept
        zombie = store.get(JOB)
        store.connection.execute("DELETE FROM resumable_jobs WHERE job_id = 'job-1'")
        fresh, _ = store.acquire(JOB, "new", 10.0, 60.0)
        assert fresh.generation == 8
        with pytest.raises(StaleLeaseError):
            store.checkpoint(
                type(fresh)(JOB, "zombie", zombie.generation, 1.0), cursor_json="99",
                status="running", items_done=1, run_time=1.0, interruptions=0, now=11.0,
                ttl=60.0)
    with SQLiteStore(path) as again:  # the counter survives reopening
        assert again.acquire("job-3", "w", 20.0, 60.0)[0].generation == 9


# -- waiting for a locked file --------------------------------------------------------------------


@pytest.mark.parametrize("given", ["argument", "attribute"])
def test_a_stop_request_ends_a_wait_for_the_locked_file_early(tmp_path, given):
    path = str(tmp_path / "locked.db")
    stop = threading.Event()
    if given == "argument":
        store = SQLiteStore(path, busy_timeout=10.0, should_stop=stop.is_set)
    else:
        store = SQLiteStore(path, busy_timeout=10.0)
        store.should_stop = stop.is_set
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    start = time.monotonic()
    with pytest.raises(StopRequestedError, match="stop was requested") as info:
        store.acquire(JOB, "w", 0.0, 60.0)
    waited = time.monotonic() - start
    assert 0.25 <= waited < 1.5, waited
    assert JOB in str(info.value) and path in str(info.value)
    holder.execute("ROLLBACK")
    assert store.get(JOB) is None
    store.close()
    holder.close()


def test_a_should_stop_that_is_not_callable_is_named(tmp_path):
    with pytest.raises(ResumableError, match="should_stop=True is not callable"):
        SQLiteStore(str(tmp_path / "x.db"), should_stop=True)


# -- files and messages ---------------------------------------------------------------------------


def test_a_file_that_is_not_sqlite_is_named_with_what_was_expected(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("job,cursor\n" * 200)
    with pytest.raises(ResumableError, match="is not an SQLite database") as info:
        SQLiteStore(str(path))
    assert str(path) in str(info.value) and "SQLiteStore made" in str(info.value)


def test_a_failed_begin_names_the_job(tmp_path):
    path = str(tmp_path / "busy.db")
    store = SQLiteStore(path, busy_timeout=0.2)
    store.acquire(JOB, "w", 0.0, 60.0)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    with pytest.raises(ResumableError, match=f"job '{JOB}': checkpoint store .*begin failed"):
        store.begin()
    holder.execute("ROLLBACK")
    holder.close()
    store.close()


def test_a_run_whose_store_stops_waiting_is_interrupted_with_nothing_written(tmp_path):
    path = str(tmp_path / "locked.db")
    store = SQLiteStore(path, busy_timeout=10.0)
    stop_early = Runner(store, owner="w", checkpoint_every_items=1,
                        stop_when=[lambda: True]).run(JOB, _Count(5))
    assert stop_early.interrupted  # a stored job, part done, to resume
    before = store.get(JOB)
    stop = threading.Event()
    store.should_stop = stop.is_set
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    timer = threading.Timer(0.2, stop.set)
    timer.start()
    result = Runner(store, owner="w").run(JOB, _Count(5))
    holder.execute("ROLLBACK")
    assert result.interrupted and "stop was requested" in result.reason
    assert store.get(JOB) == before
    holder.close()
    store.close()
