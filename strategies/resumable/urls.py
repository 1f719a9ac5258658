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
from .store import CheckpointStore, SQLiteStore

REDIS_SCHEMES = ("redis", "rediss", "unix")
POSTGRES_SCHEMES = ("postgresql", "postgres")
KNOWN = ("redis://HOST:6379/DB, unix:///PATH/redis.sock?db=DB, postgresql://USER@HOST/DB or "
         "sqlite:////ABSOLUTE/PATH.db")
"""The kinds of store URL, for messages."""


def _scheme(url: str) -> str:
    if "://" not in url:
        return ""  # a file path
    return urlsplit(url).scheme.lower()


def store_url_problem(url: object, *, exactly_once: bool = False) -> str | None:
    """What is wrong with ``url`` as the URL of a store (for ``exactly_once``, a store that can
    commit effects with the cursor), found without connecting to anything: a phrase that
    follows the URL in a message, or None when nothing is. The adapters check their settings
    with it before any worker starts."""
    if not isinstance(url, str) or not url.strip():
        return f"must be a store URL: {KNOWN}"
    scheme = _scheme(url)
    if scheme in REDIS_SCHEMES or scheme in POSTGRES_SCHEMES:
        parts = urlsplit(url)
        if not (parts.netloc or parts.path.strip("/") or parts.query):
            return f"names no server; use {KNOWN}"
    elif scheme == "sqlite":
        if not url.split("://", 1)[1].lstrip("/"):
            return "names no file; use sqlite:////ABSOLUTE/PATH.db"
    elif scheme:
        return f"scheme {scheme + '://'!r} is not a store's; use {KNOWN}"
    if exactly_once and scheme in REDIS_SCHEMES:
        return ("exactly_once=True needs a store that commits effects with the cursor "
                "(postgresql://... or sqlite:///...); a RedisStore keeps them at least once")
    return None


def open_store(url: str, **options: Any) -> CheckpointStore:
    """The store ``url`` names (see the module), made with ``options`` (e.g. ``prefix=`` for a
    ``RedisStore``, ``table=`` for a ``PostgresStore``). A URL of no known kind, a server that
    cannot be reached or a store of the wrong shape is one ``ResumableError`` naming it."""
    problem = store_url_problem(url)
    if problem is not None:
        raise ResumableError(f"store URL {url!r}: {problem}")
    scheme = _scheme(url)
    if scheme in REDIS_SCHEMES:
        from .redis_store import RedisStore

        return RedisStore(url, **options)
    if scheme in POSTGRES_SCHEMES:
        from .postgres_store import PostgresStore

        return PostgresStore(url, **options)
    if scheme == "sqlite":
        path = url.split("://", 1)[1]
        return SQLiteStore(path[1:] if path.startswith("/") else path, **options)  # sqlite:///x
    return SQLiteStore(url, **options)  # a plain path


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
