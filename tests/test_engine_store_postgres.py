"""``PostgresStore`` on a real PostgreSQL server: what the shared store tests
(``test_engine_store``, the properties and the stateful machine, which run on it too) do not
cover: several machines' connections to one table, exactly-once jobs in parallel, a zombie's
batch, a lost connection, bad URLs, servers and tables."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from conftest import new_postgres_store

from deploysim.strategies.resumable import (
    IterationJob,
    LeaseHeldError,
    ResumableError,
    Runner,
    StaleLeaseError,
    open_store,
)
from deploysim.strategies.resumable import enumerators as en
from deploysim.strategies.resumable.postgres_store import PostgresStore


def _write(store, lease, cursor: int, now: float, status: str = "running"):
    return store.checkpoint(lease, cursor_json=str(cursor), status=status, items_done=cursor + 1,
                            run_time=1.0, interruptions=0, now=now, ttl=60.0)


def test_two_machines_connections_share_one_job(postgres_url):
    """Two connections (two worker machines) on one table: one holds the lease, the other is
    refused; once the first is fenced out it can write nothing."""
    first = new_postgres_store(postgres_url)
    second = PostgresStore(postgres_url, table=first.table)
    lease, _ = first.acquire("job", "a", 10.0, 60.0)
    with pytest.raises(LeaseHeldError):
        second.acquire("job", "b", 20.0, 60.0)
    later, _ = second.acquire("job", "b", 71.0, 60.0)  # a's lease expired
    assert later.generation > lease.generation
    with pytest.raises(StaleLeaseError):
        _write(first, lease, 5, 72.0)
    assert second.get("job").cursor is None and second.get("job").owner == "b"
    first.close()
    second.close()


def test_generations_never_repeat_after_a_delete(postgres_url):
    with new_postgres_store(postgres_url) as store:
        old, _ = store.acquire("job", "a", 0.0, 60.0)
        store.delete("job")
        new, record = store.acquire("job", "a", 0.0, 60.0)
        assert new.generation > old.generation and record.cursor is None
        with pytest.raises(StaleLeaseError, match="replaced"):
            _write(store, old, 3, 1.0)


def test_a_lease_locks_only_its_own_row(postgres_url):
    """While one connection holds a job's row locked (a lease being taken), another machine
    takes and renews another job's lease without waiting."""
    with new_postgres_store(postgres_url) as a, PostgresStore(postgres_url, table=a.table) as b:
        a.acquire("one", "a", 0.0, 60.0)
        locker = psycopg.connect(postgres_url)
        try:
            locker.execute(f"SELECT 1 FROM {a.table} WHERE job_id = 'one' FOR UPDATE")
            b.connection.execute("SET lock_timeout = '2s'")
            start = time.monotonic()
            lease, _ = b.acquire("two", "b", 0.0, 60.0)
            _write(b, lease, 0, 1.0)
            assert time.monotonic() - start < 1.0
        finally:
            locker.close()


class Slow(IterationJob):
    """Inserts each number through the store's connection (exactly-once); the first item of
    each job waits at ``meet`` for the other job's, so the two can only finish if their
    batches are open at the same time."""

    def __init__(self, store: PostgresStore, name: str, n: int, meet: threading.Barrier):
        self.store, self.name, self.n, self.meet = store, name, n, meet

    def build_enumerator(self, cursor):
        return en.int_range(0, self.n, cursor=cursor)

    def each_iteration(self, item: int) -> None:
        self.store.connection.execute(f"INSERT INTO {self.store.table}_effects VALUES (%s, %s)",
                                      (self.name, item))
        if item == 0:
            self.meet.wait(timeout=10)


def test_exactly_once_jobs_run_in_parallel_and_commit_their_own_effects(postgres_url):
    """Two exactly-once jobs, each on its own machine's connection to one table: both batches
    are open at once (each job's first item waits for the other's), and each commits exactly
    its own effects with its cursor."""
    first = new_postgres_store(postgres_url)
    first.connection.execute(f"CREATE TABLE {first.table}_effects (job text, n integer, "
                             f"PRIMARY KEY (job, n))")
    second = PostgresStore(postgres_url, table=first.table)
    meet = threading.Barrier(2)
    results = {}

    def run(store: PostgresStore, name: str) -> None:
        results[name] = Runner(store, exactly_once=True, batch=5).run(
            name, Slow(store, name, 12, meet))

    threads = [threading.Thread(target=run, args=(s, n)) for s, n in ((first, "a"), (second, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not meet.broken, "the two batches were not open at the same time"
    assert results["a"].completed and results["b"].completed
    rows = first.connection.execute(
        f"SELECT job, count(*), count(DISTINCT n) FROM {first.table}_effects GROUP BY job "
        f"ORDER BY job").fetchall()
    assert rows == [("a", 12, 12), ("b", 12, 12)]
    first.close()
    second.close()


def test_a_zombies_batch_commits_nothing(postgres_url):
    """A runner whose lease was taken over while its exactly-once batch was open: its
    checkpoint is refused and the batch's effects are rolled back with it."""
    zombie = new_postgres_store(postgres_url)
    table = f"{zombie.table}_effects"
    zombie.connection.execute(f"CREATE TABLE {table} (n integer)")
    heir = PostgresStore(postgres_url, table=zombie.table)
    lease, _ = zombie.acquire("job", "zombie", 0.0, 10.0)
    zombie.begin()
    zombie.connection.execute(f"INSERT INTO {table} VALUES (1), (2)")
    heir.acquire("job", "heir", 11.0, 60.0)  # the zombie's lease expired at 10
    with pytest.raises(StaleLeaseError):
        _write(zombie, lease, 1, 12.0)
    assert heir.connection.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
    assert zombie.connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert heir.get("job").owner == "heir" and heir.get("job").cursor is None
    zombie.close()
    heir.close()


def test_a_commit_inside_a_batch_fails_the_job_and_keeps_nothing(postgres_url):
    with new_postgres_store(postgres_url) as store:
        store.connection.execute(f"CREATE TABLE {store.table}_effects (n integer)")

        class Committing(IterationJob):
            def build_enumerator(self, cursor):
                return en.int_range(0, 5, cursor=cursor)

            def each_iteration(self, item):
                store.connection.execute(f"INSERT INTO {store.table}_effects VALUES (%s)",
                                         (item,))
                store.connection.commit()

        result = Runner(store, exactly_once=True).run("job", Committing())
        assert result.failed and "commit" in result.reason.lower()
        assert store.connection.execute(
            f"SELECT count(*) FROM {store.table}_effects").fetchone() == (0,)
        assert store.get("job").status == "failed"


def test_the_store_reconnects_after_losing_its_connection(postgres_url):
    """The server ends the store's session (a restart, a failover): the next write reconnects
    and is made, and the job's progress is as it was."""
    with new_postgres_store(postgres_url) as store:
        lease, _ = store.acquire("job", "w", 0.0, 60.0)
        lease = _write(store, lease, 4, 1.0)
        pid = store.connection.info.backend_pid
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        lease = _write(store, lease, 5, 2.0)
        assert store.connection.info.backend_pid != pid
        assert store.get("job").cursor == 5


def test_a_lost_connection_inside_a_batch_fails_the_checkpoint(postgres_url):
    with new_postgres_store(postgres_url) as store:
        lease, _ = store.acquire("job", "w", 0.0, 60.0)
        store.begin()
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (store.connection.info.backend_pid,))
        with pytest.raises(ResumableError, match=r"checkpoint failed.*unchanged"):
            _write(store, lease, 3, 1.0)
        assert store.get("job").cursor is None  # reconnected for the read; nothing written


def test_a_runner_resumes_from_the_postgres_store(postgres_url):
    seen: list[int] = []

    class Count(IterationJob):
        def build_enumerator(self, cursor):
            return en.int_range(0, 10, cursor=cursor)

        def each_iteration(self, item):
            seen.append(item)

    with open_store(postgres_url, table=new_postgres_store(postgres_url).table) as store:
        assert isinstance(store, PostgresStore)
        looks = iter([False, False, False, True])
        first = Runner(store, stop_when=[lambda: next(looks, False)], checkpoint_every_items=1)
        assert first.run("count", Count()).interrupted
        assert store.get("count").cursor == seen[-1] == 3
        assert Runner(store).run("count", Count()).completed
        assert seen == list(range(10))


def test_a_table_of_another_shape_is_refused_and_left_as_it_was(postgres_url):
    with psycopg.connect(postgres_url, autocommit=True) as c:
        c.execute("CREATE TABLE IF NOT EXISTS invoices (job_id text, amount integer)")
        c.execute("INSERT INTO invoices VALUES ('x', 42)")
        with pytest.raises(ResumableError, match=r"table 'invoices' is not a store's table.*"
                                                 r"no column status"):
            PostgresStore(postgres_url, table="invoices")
        assert c.execute("SELECT * FROM invoices").fetchall() == [("x", 42)]


def test_a_stored_cursor_that_is_not_json_names_the_job(postgres_url):
    with new_postgres_store(postgres_url) as store:
        store.acquire("job", "w", 0.0, 60.0)
        store.connection.execute(f"UPDATE {store.table} SET cursor = '{{oops' WHERE job_id='job'")
        with pytest.raises(ResumableError, match="job 'job': stored cursor"):
            store.get("job")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, "pass url=.*neither"),
    ({"url": "postgresql://x@/db", "connection": object()}, "not both"),
    ({"url": "postgresql://me:s3cret@/db?host=/nonexistent"}, r"me:\*\*\*@.*cannot connect"),
    ({"url": "postgresql://me@/db?bogus=1"}, "not a PostgreSQL URL"),
    ({"url": "postgresql://x@/db", "table": "Robert'); DROP TABLE x;--"}, "table="),
    ({"connection": "postgresql://x@/db"}, "must be a psycopg 3 Connection"),
])
def test_a_bad_url_or_table_is_one_clear_error(kwargs, message):
    with pytest.raises(ResumableError, match=message) as caught:
        PostgresStore(**kwargs)
    assert "s3cret" not in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_server_that_is_not_there_is_one_clear_error(tmp_path):
    with pytest.raises(ResumableError, match="cannot connect"):
        open_store(f"postgresql://postgres@/postgres?host={tmp_path}", connect_timeout=1)
