"""Stores named by URL, as a job system's workers are configured: ``open_store(url)`` makes the
store a URL names, and ``local_store(url)`` keeps one per process and thread, for adapters
whose tasks run in forked children and thread pools.

- ``redis://HOST:PORT/DB``, ``rediss://...``, ``unix:///PATH/redis.sock?db=N``: ``RedisStore``;
- ``postgresql://USER@HOST:PORT/DB`` (or ``postgres://``): ``PostgresStore``;
- ``sqlite:///PATH`` (``sqlite:////abs/path`` for an absolute path), or a plain file path:
  ``SQLiteStore``.
"""

from __future__ import annotations

import os
import threading
from typing import Any
from urllib.parse import urlsplit

from .errors import ResumableError
from .store import CheckpointStore

REDIS_SCHEMES = ("redis", "rediss", "unix")
POSTGRES_SCHEMES = ("postgresql", "postgres")
_KNOWN = "redis://HOST:PORT/DB, unix:///PATH/redis.sock, postgresql://USER@HOST/DB, sqlite:///PATH"


def _scheme(url: str) -> str:
    if "://" not in url:
        return ""  # a file path
    return urlsplit(url).scheme.lower()


def open_store(url: str, **options: Any) -> CheckpointStore:
    """The store ``url`` names (see the module), made with ``options`` (e.g. ``prefix=`` for a
    ``RedisStore``, ``table=`` for a ``PostgresStore``). A URL of no known kind, a server that
    cannot be reached or a store of the wrong shape is one ``ResumableError`` naming it."""
    if not isinstance(url, str) or not url.strip():
        raise ResumableError(f"store URL {url!r}: must be a non-empty string such as {_KNOWN}")
    scheme = _scheme(url)
    if scheme in REDIS_SCHEMES:
        from .redis_store import RedisStore

        return RedisStore(url, **options)
    if scheme in POSTGRES_SCHEMES:
        from .postgres_store import PostgresStore

        return PostgresStore(url, **options)
    if scheme == "sqlite":
        from .store import SQLiteStore

        path = url.split("://", 1)[1]
        path = path[1:] if path.startswith("/") else path  # sqlite:///x.db is x.db
        if not path:
            raise ResumableError(f"store URL {url!r}: no file named; use sqlite:///PATH")
        return SQLiteStore(path, **options)
    if scheme == "":
        from .store import SQLiteStore

        return SQLiteStore(url, **options)
    raise ResumableError(f"store URL {url!r}: scheme {scheme + '://'!r} is not one of {_KNOWN}")


_local = threading.local()


def local_store(url: str, **options: Any) -> CheckpointStore:
    """This process's and this thread's store for ``url``, made on first use: a store opened
    before a fork (a prefork pool, RQ's work horse) is not used after it, and threads (a
    thread pool, Dramatiq's worker threads) never share one connection."""
    stores: dict[tuple[str, tuple[tuple[str, Any], ...]], CheckpointStore] | None = getattr(
        _local, "stores", None)
    pid = os.getpid()
    if stores is None or getattr(_local, "pid", None) != pid:
        stores = _local.stores = {}
        _local.pid = pid
    key = (url, tuple(sorted(options.items())))
    store = stores.get(key)
    if store is None:
        store = stores[key] = open_store(url, **options)
    return store
