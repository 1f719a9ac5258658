"""Stores named by URL: ``open_store`` makes the store a URL names, ``store_url_problem`` says
what is wrong with one without connecting, ``local_store`` keeps one per process and thread."""

from __future__ import annotations

import os
import threading

import pytest

from deploysim.strategies.resumable import (
    PostgresStore,
    RedisStore,
    ResumableError,
    SQLiteStore,
    local_store,
    open_store,
)
from deploysim.strategies.resumable.urls import store_url_problem


def test_each_kind_of_url_makes_its_store(tmp_path, monkeypatch, redis_url, postgres_url):
    relative = tmp_path / "rel"
    relative.mkdir()
    monkeypatch.chdir(relative)
    made = {
        "plain path": open_store(str(tmp_path / "a.db")),
        "sqlite absolute": open_store(f"sqlite:///{tmp_path / 'b.db'}"),
        "sqlite relative": open_store("sqlite:///c.db"),
        "redis": open_store(redis_url, prefix="urls"),
        "postgres": open_store(postgres_url),
    }
    try:
        assert [type(s) for s in made.values()] == [SQLiteStore, SQLiteStore, SQLiteStore,
                                                    RedisStore, PostgresStore]
        assert (tmp_path / "a.db").exists() and (tmp_path / "b.db").exists()
        assert (relative / "c.db").exists()
        assert made["redis"].prefix == "urls"
    finally:
        for store in made.values():
            store.close()


@pytest.mark.parametrize(("url", "problem"), [
    (None, "must be a store URL"),
    ("  ", "must be a store URL"),
    ("mysql://db/app", "scheme 'mysql://' is not a store's"),
    ("redis://", "names no server"),
    ("sqlite:///", "names no file"),
])
def test_a_bad_url_is_one_error_naming_it(url, problem):
    assert problem in store_url_problem(url)
    with pytest.raises(ResumableError, match=f"store URL {url!r}: {problem}"):
        open_store(url)


def test_exactly_once_needs_a_transactional_store():
    assert store_url_problem("redis://h/3") is None
    assert "at least once" in store_url_problem("redis://h/3", exactly_once=True)
    for url in ("postgresql://u@h/db", "sqlite:///x.db", "x.db"):
        assert store_url_problem(url, exactly_once=True) is None


def test_local_store_is_one_per_thread_and_process(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    here = local_store(url)
    assert local_store(url) is here
    assert local_store(url, busy_timeout=1.0) is not here  # other options, another store
    seen = []
    thread = threading.Thread(target=lambda: seen.append(local_store(url)))
    thread.start()
    thread.join()
    assert seen and seen[0] is not here
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a fork makes a new store, never the parent's
        os.close(read)
        os.write(write, b"1" if local_store(url) is not here else b"0")
        os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.close(read)
    os.waitpid(pid, 0)
