"""Checkpoint stores: leases, fencing by generation, bad rows, locked databases, WAL.

Both stores keep one contract, so most tests run against each of them, and a differential
property checks that they answer any sequence of acquires and checkpoints the same way.
"""

from __future__ import annotations

import logging
import pickle
import sqlite3
import threading
import time

import pytest
from conftest import new_postgres_store, new_redis_store
from hypothesis import given, settings
from hypothesis import strategies as st

from deploysim.strategies.resumable import (
    IterationJob,
    LeaseHeldError,
    MemoryStore,
    ResumableError,
    Runner,
    SQLiteStore,
    StaleLeaseError,
    VirtualClock,
)
from deploysim.strategies.resumable import enumerators as en

JOB = "job-1"


@pytest.fixture(params=["memory", "sqlite-memory", "sqlite-file", "redis", "postgres"])
def store(request, tmp_path):
    """Each store in turn: in memory, SQLite in memory, SQLite in a file, Redis and PostgreSQL
    (real servers; keys or a table of its own)."""
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "redis":
        with new_redis_store(request.getfixturevalue("redis_url")) as s:
            yield s
        return
    if request.param == "postgres":
        with new_postgres_store(request.getfixturevalue("postgres_url")) as s:
            yield s
        return
    path = ":memory:" if request.param == "sqlite-memory" else str(tmp_path / "progress.db")
    with SQLiteStore(path) as s:
        yield s


def write(store, lease, *, cursor="0", status="running", items=1, now=1.0, ttl=60.0):
    """A checkpoint with defaults for what the test does not care about."""
    return store.checkpoint(lease, cursor_json=cursor, status=status, items_done=items,
                            run_time=now, interruptions=0, now=now, ttl=ttl)


# -- leases and fencing ---------------------------------------------------------------------------


def test_a_new_job_starts_pending_with_the_first_generation(store):
    assert store.get(JOB) is None
    lease, record = store.acquire(JOB, "a", 10.0, 60.0)
    assert (lease.owner, lease.generation, lease.expires_at) == ("a", 1, 70.0)
    assert record.status == "pending" and record.cursor is None and record.executions == 1
    assert store.get(JOB) == record


def test_a_lease_held_by_another_is_refused_naming_the_owner(store):
    store.acquire(JOB, "worker-a", 0.0, 60.0)
    before = store.get(JOB)
    with pytest.raises(ResumableError) as info:
        store.acquire(JOB, "worker-b", 59.0, 60.0)
    assert not isinstance(info.value, StaleLeaseError)
    assert "worker-a" in str(info.value) and JOB in str(info.value)
    assert store.get(JOB) == before


def test_a_live_lease_is_a_lease_held_error_naming_job_holder_and_time_left(store):
    store.acquire(JOB, "h:1", 0.0, 60.0)
    with pytest.raises(LeaseHeldError) as info:
        store.acquire(JOB, "h:2", 9.0, 60.0)
    held = info.value
    assert isinstance(held, ResumableError) and not isinstance(held, StaleLeaseError)
    assert (held.job_id, held.holder, held.seconds_left, held.generation) == (JOB, "h:1", 51.0, 1)
    assert str(held).startswith(f"job {JOB!r} is leased by 'h:1' for another 51 s")


@pytest.mark.parametrize(("left", "shown"), [(51.4, "51"), (3600.0, "3600"), (2.5, "2.5"),
                                              (0.25, "0.25"), (1e-5, "0")])
def test_lease_held_error_shows_seconds_left_without_an_exponent(left, shown):
    held = LeaseHeldError("x", "h:1", left, 7)
    assert f"for another {shown} s (generation 7)" in str(held)


def test_lease_held_error_survives_pickling_with_its_attributes():
    held = pickle.loads(pickle.dumps(LeaseHeldError("x", "h:1", 51.0, 3)))
    assert (held.job_id, held.holder, held.seconds_left, held.generation) == ("x", "h:1", 51.0, 3)
    assert str(held) == str(LeaseHeldError("x", "h:1", 51.0, 3))


def test_a_runner_meeting_a_live_lease_is_busy_and_writes_nothing(store):
    clock = VirtualClock()
    store.acquire(JOB, "h:1", 0.0, 60.0)
    before = store.get(JOB)
    clock.set(20.0)

    class Job(IterationJob):
        def build_enumerator(self, cursor):
            return en.int_range(0, 5, cursor)

        def each_iteration(self, item):
            raise AssertionError(f"item {item} ran under another owner's lease")

    result = Runner(store, owner="h:2", clock=clock).run(JOB, Job())
    assert result.busy and result.status == "busy"
    assert result.retry_after == 40.0 and "h:1" in result.reason
    assert store.get(JOB) == before
    with pytest.raises(LeaseHeldError) as info:  # start() is for callers that drive a run
        Runner(store, owner="h:2", clock=clock).start(JOB, Job())
    assert info.value.holder == "h:1" and info.value.seconds_left == 40.0
    assert store.get(JOB) == before


def test_an_expired_lease_can_be_taken_and_the_generation_bumps(store):
    first, _ = store.acquire(JOB, "a", 0.0, 60.0)
    second, record = store.acquire(JOB, "b", 60.0, 60.0)  # expires_at == now: expired
    assert second.generation == first.generation + 1 == record.generation
    assert record.owner == "b" and record.executions == 2
    third, _ = store.acquire(JOB, "b", 61.0, 60.0)  # the same owner may take it again
    assert third.generation == second.generation + 1


def test_a_stale_checkpoint_is_refused_and_the_record_unchanged(store):
    old, _ = store.acquire(JOB, "a", 0.0, 10.0)
    write(store, old, cursor="3", items=4, now=5.0, ttl=10.0)
    new, _ = store.acquire(JOB, "b", 20.0, 10.0)
    write(store, new, cursor="5", items=6, now=21.0, ttl=10.0)
    before = store.get(JOB)
    with pytest.raises(StaleLeaseError) as info:
        write(store, old, cursor="9", status="completed", items=10, now=22.0)
    assert f"generation {old.generation}" in str(info.value)
    assert f"generation {new.generation}" in str(info.value)
    assert store.get(JOB) == before


def test_running_keeps_the_lease_and_other_statuses_release_it(store):
    lease, _ = store.acquire(JOB, "a", 0.0, 60.0)
    lease = write(store, lease, now=5.0)
    assert lease.expires_at == 65.0 and store.get(JOB).owner == "a"
    lease = write(store, lease, status="interrupted", now=6.0)
    record = store.get(JOB)
    assert record.owner is None and record.lease_expires == 0.0 and lease.expires_at == 0.0
    store.acquire(JOB, "b", 7.0, 60.0)  # free at once after a release


def test_a_completed_job_is_not_counted_as_a_new_execution(store):
    lease, _ = store.acquire(JOB, "a", 0.0, 60.0)
    write(store, lease, status="completed")
    _, record = store.acquire(JOB, "b", 2.0, 60.0)
    assert record.executions == 1 and record.status == "completed"


def test_an_unknown_status_is_refused_at_checkpoint(store):
    lease, _ = store.acquire(JOB, "a", 0.0, 60.0)
    before = store.get(JOB)
    with pytest.raises(ResumableError, match="'done'"):
        write(store, lease, status="done")
    assert store.get(JOB) == before


def test_jobs_are_listed_in_id_order(store):
    for job_id in ["b", "a", "c"]:
        store.acquire(job_id, "w", 0.0, 1.0)
    assert [r.job_id for r in store.jobs()] == ["a", "b", "c"]


ops = st.lists(
    st.one_of(
        st.tuples(st.just("acquire"), st.sampled_from(["a", "b"]), st.integers(0, 3)),
        st.tuples(st.just("write"), st.integers(0, 5),
                  st.sampled_from(["running", "interrupted", "completed", "failed"])),
        st.tuples(st.just("wait"), st.integers(1, 40)),
    ),
    max_size=20,
)


@settings(max_examples=60)
@given(ops)
def test_both_stores_answer_the_same_way(script):
    stores = [MemoryStore(), SQLiteStore(":memory:")]
    leases: list[list] = [[], []]
    now = 0.0
    for step, op in enumerate(script):
        answers = []
        for store, held in zip(stores, leases, strict=True):
            try:
                if op[0] == "acquire":
                    lease, record = store.acquire(JOB, op[1], now, 30.0)
                    held.append(lease)
                    answers.append(record)
                elif op[0] == "write" and held:
                    lease = held[op[1] % len(held)]
                    held.append(write(store, lease, cursor=str(step), status=op[2],
                                      items=step, now=now, ttl=30.0))
                    answers.append(held[-1])
            except ResumableError as exc:
                answers.append((type(exc), str(exc)))
            answers.append(store.get(JOB))
        if op[0] == "wait":
            now += op[1]
        assert answers[: len(answers) // 2] == answers[len(answers) // 2:], op


# -- bad rows -------------------------------------------------------------------------------------


def raw(store: SQLiteStore) -> tuple:
    """The job's row as SQLite holds it, undecoded."""
    return store.connection.execute(
        "SELECT * FROM resumable_jobs WHERE job_id = ?", (JOB,)).fetchone()


@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("cursor", "{not json", ["stored cursor", "'{not json'", "not JSON"]),
        ("status", "paused", ["stored status", "'paused'"]),
        ("items_done", "lots", ["stored items_done", "'lots'", "not a number"]),
        ("generation", "two", ["stored generation", "'two'"]),
        ("run_time", "slow", ["stored run_time", "'slow'"]),
    ],
)
def test_a_bad_row_is_named_and_nothing_is_modified(tmp_path, column, value, words):
    with SQLiteStore(str(tmp_path / "p.db")) as store:
        lease, _ = store.acquire(JOB, "a", 0.0, 10.0)
        write(store, lease, cursor="3", status="interrupted", items=4)
        store.connection.execute(
            f"UPDATE resumable_jobs SET {column} = ? WHERE job_id = ?", (value, JOB))
        before = raw(store)
        attempts = [lambda: store.acquire(JOB, "b", 100.0, 10.0)]
        if column != "status":  # get() reads the row as it is; acquire() judges the status
            attempts.append(lambda: store.get(JOB))
        for attempt in attempts:
            with pytest.raises(ResumableError) as info:
                attempt()
            message = str(info.value)
            assert repr(JOB) in message
            for word in words:
                assert word in message
            assert raw(store) == before


def test_a_checkpoint_meeting_a_text_generation_names_it():
    store = SQLiteStore(":memory:")
    lease, _ = store.acquire(JOB, "a", 0.0, 10.0)
    store.connection.execute("UPDATE resumable_jobs SET generation = 'two'")
    with pytest.raises(ResumableError, match="'two'"):
        write(store, lease)


def test_a_runner_refuses_a_job_with_a_bad_row_and_leaves_it_alone():
    store = SQLiteStore(":memory:")
    store.acquire(JOB, "a", 0.0, 10.0)
    store.connection.execute("UPDATE resumable_jobs SET cursor = 'oops' WHERE job_id = ?", (JOB,))
    before = raw(store)

    class Job(IterationJob):
        def build_enumerator(self, cursor):
            return en.int_range(0, 3, cursor)

        def each_iteration(self, item):
            raise AssertionError("must not run")

    with pytest.raises(ResumableError, match="'oops'"):
        Runner(store, clock=VirtualClock(100.0)).run(JOB, Job())
    assert raw(store) == before


# -- locked databases -----------------------------------------------------------------------------


def hold_lock(path: str) -> sqlite3.Connection:
    """Another process's connection holding the write lock."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN EXCLUSIVE")
    return other


def release_after(other: sqlite3.Connection, seconds: float) -> threading.Thread:
    """Let go of the lock from another thread after ``seconds``."""
    def release() -> None:
        time.sleep(seconds)
        other.execute("ROLLBACK")

    thread = threading.Thread(target=release)
    thread.start()
    return thread


def test_a_locked_database_fails_after_busy_timeout_with_progress_intact(tmp_path):
    path = str(tmp_path / "p.db")
    with SQLiteStore(path, busy_timeout=0.2) as store:
        lease, _ = store.acquire(JOB, "a", 0.0, 60.0)
        lease = write(store, lease, cursor="3", items=4)
        before = store.get(JOB)
        other = hold_lock(path)
        started = time.monotonic()
        for attempt in (lambda: write(store, lease, cursor="7", items=8, now=2.0),
                        lambda: store.acquire("job-2", "a", 0.0, 60.0)):
            with pytest.raises(ResumableError) as info:
                attempt()
            assert "locked" in str(info.value) and path in str(info.value)
            assert "stored progress is unchanged" in str(info.value)
        assert 0.3 <= time.monotonic() - started < 5.0
        assert store.get(JOB) == before  # WAL: readers go on while a writer holds the lock
        other.execute("ROLLBACK")
        other.close()
        write(store, lease, cursor="7", items=8, now=2.0)
        assert store.get(JOB).cursor == 7


def test_a_lock_released_in_time_is_waited_for_with_backoff(tmp_path, caplog):
    path = str(tmp_path / "p.db")
    with SQLiteStore(path, busy_timeout=3.0) as store:
        lease, _ = store.acquire(JOB, "a", 0.0, 60.0)
        other = hold_lock(path)
        thread = release_after(other, 1.3)  # longer than one attempt (1 s)
        with caplog.at_level(logging.DEBUG, logger="deploysim.strategies.resumable"):
            write(store, lease, cursor="5", items=6)
        thread.join()
        other.close()
        assert store.get(JOB).cursor == 5
        assert any("retrying in" in r.getMessage() for r in caplog.records)


def test_a_run_whose_checkpoint_meets_a_locked_database_fails_and_keeps_its_progress(tmp_path):
    path = str(tmp_path / "p.db")
    store = SQLiteStore(path, busy_timeout=0.1)
    holder: list[sqlite3.Connection] = []

    class Job(IterationJob):
        def build_enumerator(self, cursor):
            return en.int_range(0, 10, cursor)

        def each_iteration(self, item):
            if item == 5:
                holder.append(hold_lock(path))

    with pytest.raises(ResumableError, match="locked"):
        Runner(store, clock=VirtualClock(), checkpoint_every_items=3).run(JOB, Job())
    holder[0].execute("ROLLBACK")
    record = store.get(JOB)
    assert record.cursor == 2 and record.items_done == 3 and record.status == "running"
    store.close()


# -- the file itself ------------------------------------------------------------------------------


def test_a_file_database_is_in_wal_mode_and_survives_reopening(tmp_path):
    path = str(tmp_path / "p.db")
    with SQLiteStore(path) as store:
        assert store.connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        lease, _ = store.acquire(JOB, "a", 0.0, 60.0)
        write(store, lease, cursor='[1, "x"]', status="interrupted", items=2)
    with SQLiteStore(path) as again:
        record = again.get(JOB)
        assert record.cursor == [1, "x"] and record.status == "interrupted"
        assert record.generation == 1


def test_reset_forgets_progress_but_keeps_old_leases_fenced():
    store = SQLiteStore(":memory:")
    lease, _ = store.acquire(JOB, "a", 0.0, 60.0)
    write(store, lease, cursor="4", items=5)
    store.reset(JOB)
    record = store.get(JOB)
    assert record.cursor is None and record.items_done == 0 and record.status == "pending"
    fresh, _ = store.acquire(JOB, "b", 1.0, 60.0)
    with pytest.raises(StaleLeaseError):
        write(store, lease, cursor="9")
    assert fresh.generation == 2


def test_a_bad_synchronous_setting_is_named():
    with pytest.raises(ResumableError, match="synchronous='SOMETIMES'"):
        SQLiteStore(":memory:", synchronous="SOMETIMES")


def test_an_unopenable_path_is_named(tmp_path):
    path = str(tmp_path / "missing-dir" / "p.db")
    with pytest.raises(ResumableError, match="missing-dir"):
        SQLiteStore(path)

