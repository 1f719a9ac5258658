"""sql_rows and sql_batches: keyset order, exact resumes, and rows changed mid-iteration."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import islice

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploysim.strategies.resumable.enumerators.sql import sql_batches, sql_rows
from deploysim.strategies.resumable.errors import ResumableError

_COLS = ("k0", "k1", "k2")
_VALUE = {
    "k0": st.integers(-3, 3),
    "k1": st.text(st.sampled_from("aAbé😀 "), max_size=2),
    "k2": st.integers(0, 2),
}


@st.composite
def _tables(draw: st.DrawFn, min_size: int = 0) -> tuple[tuple[str, ...], dict[tuple, int], str]:
    """A key of one to three columns, unique key tuples (in insertion order) mapped to a
    payload ``v``, and how the key is indexed (the index can hide a missing ORDER BY term)."""
    nk = draw(st.integers(1, 3))
    key = _COLS[:nk]
    keys = draw(
        st.lists(st.tuples(*(_VALUE[c] for c in key)), unique=True, min_size=min_size, max_size=14)
    )
    layout = draw(st.sampled_from(["primary key", "no index", "reversed unique index"]))
    return key, {k: draw(st.integers(0, 9)) for k in keys}, layout


@contextmanager
def _db(
    key: tuple[str, ...], rows: dict[tuple, int], layout: str = "primary key"
) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        cols = ", ".join(f"{c} {'TEXT' if c == 'k1' else 'INTEGER'}" for c in key)
        pk = f", PRIMARY KEY ({', '.join(key)})" if layout == "primary key" else ""
        conn.execute(f"CREATE TABLE t ({cols}, v INTEGER{pk})")
        if layout == "reversed unique index":
            conn.execute(f"CREATE UNIQUE INDEX t_key ON t ({', '.join(reversed(key))})")
        for k, v in rows.items():
            _insert(conn, key, k, v)
        yield conn
    finally:
        conn.close()


def _insert(conn: sqlite3.Connection, key: tuple[str, ...], k: tuple, v: int) -> None:
    marks = ", ".join("?" * (len(key) + 1))
    conn.execute(f"INSERT INTO t ({', '.join(key)}, v) VALUES ({marks})", (*k, v))


def _delete(conn: sqlite3.Connection, key: tuple[str, ...], k: tuple) -> None:
    conn.execute(f"DELETE FROM t WHERE {' AND '.join(f'{c} = ?' for c in key)}", k)


def _row(key: tuple[str, ...], k: tuple, v: int) -> dict:
    return {**dict(zip(key, k, strict=True)), "v": v}


def _take(it: Iterator, bound: int) -> list:
    """All items of ``it``, failing (instead of looping forever) past ``bound`` items."""
    items = list(islice(it, bound + 1))
    assert len(items) <= bound, f"more than {bound} items: a row was yielded again"
    return items


def _at_least(n: int) -> int:
    """``n`` examples, or more when the loaded hypothesis profile asks for more."""
    return max(n, settings().max_examples)


def _via_json(cursor: list) -> list:
    return json.loads(json.dumps(cursor))


@settings(max_examples=_at_least(250), deadline=None)
@given(table=_tables(), batch_size=st.integers(1, 5))
def test_rows_in_key_order_and_every_cursor_resumes_exactly(table, batch_size: int) -> None:
    key, rows, layout = table
    expected = [(_row(key, k, rows[k]), list(k)) for k in sorted(rows)]
    with _db(key, rows, layout) as conn:
        n = len(rows)
        full = _take(sql_rows(conn, "t", key, batch_size=batch_size), n)
        assert full == expected
        assert _take(sql_rows(conn, "t", key, cursor=None), n) == expected
        for i, (_, cursor) in enumerate(full):
            rest = sql_rows(conn, "t", key, batch_size=batch_size, cursor=_via_json(cursor))
            assert _take(rest, n) == expected[i + 1 :]
        batches = _take(sql_batches(conn, "t", key, batch_size=batch_size), n)
        assert [r for rows_, _ in batches for r in rows_] == [r for r, _ in expected]
        assert all(0 < len(b) <= batch_size for b, _ in batches)
        assert [c for b, c in batches] == [_key_of(key, b[-1]) for b, _ in batches]
        for i, (_, cursor) in enumerate(batches):
            rest = sql_batches(conn, "t", key, batch_size=batch_size, cursor=_via_json(cursor))
            assert [r for b, _ in _take(rest, n) for r in b] == [
                r for b, _ in batches[i + 1 :] for r in b
            ]


def _key_of(key: tuple[str, ...], row: dict) -> list:
    return [row[c] for c in key]


@settings(max_examples=_at_least(80), deadline=None)
@given(table=_tables(), modulus=st.integers(2, 3), batch_size=st.integers(1, 4))
def test_where_filter_with_params_and_resume(table, modulus: int, batch_size: int) -> None:
    key, rows, layout = table
    keep = [k for k in sorted(rows) if rows[k] % modulus == 0]
    expected = [(_row(key, k, rows[k]), list(k)) for k in keep]
    with _db(key, rows, layout) as conn:
        kwargs = {"where": "v % ? = 0", "params": [modulus], "batch_size": batch_size}
        assert _take(sql_rows(conn, "t", key, **kwargs), len(rows)) == expected
        for i, (_, cursor) in enumerate(expected):
            rest = sql_rows(conn, "t", key, cursor=cursor, **kwargs)
            assert _take(rest, len(rows)) == expected[i + 1 :]


@settings(max_examples=_at_least(250), deadline=None)
@given(
    table=_tables(min_size=1),
    batch_size=st.integers(1, 4),
    data=st.data(),
)
def test_inserts_and_deletes_during_iteration_follow_the_documented_rule(
    table, batch_size: int, data: st.DataObject
) -> None:
    key, rows, layout = table
    before = sorted(rows)
    done = data.draw(st.integers(1, len(before)), label="rows completed before the change")
    deletes = data.draw(st.lists(st.sampled_from(before), unique=True), label="deletes")
    inserts = data.draw(
        st.lists(
            st.tuples(*(_VALUE[c] for c in key)).filter(lambda k: k not in rows),
            unique=True,
            max_size=6,
        ),
        label="inserts",
    )
    with _db(key, rows, layout) as conn:
        it = sql_rows(conn, "t", key, batch_size=batch_size)
        seen = [next(it) for _ in range(done)]
        for k in deletes:
            _delete(conn, key, k)
        for k in inserts:
            _insert(conn, key, k, 7)
        seen += _take(it, len(rows) + len(inserts))
        after = {k: v for k, v in rows.items() if k not in deletes} | dict.fromkeys(inserts, 7)

    # The page holding row number `done` was read before the change; it ends at `page_end`.
    page_end = min(math.ceil(done / batch_size) * batch_size, len(before))
    last_read = before[page_end - 1]
    expected = [_row(key, k, rows[k]) for k in before[:page_end]]
    expected += [_row(key, k, after[k]) for k in sorted(after) if k > last_read]
    assert [r for r, _ in seen] == expected
    keys = [tuple(c) for _, c in seen]
    assert keys == sorted(set(keys)), "no key twice, always increasing"
    behind = [k for k in inserts if k < tuple(seen[done - 1][1])]
    assert not set(behind) & set(keys), "rows inserted behind the cursor are never seen"


def test_documented_behaviour_with_batch_size_one() -> None:
    key = ("k0",)
    with _db(key, {(i,): i for i in range(0, 100, 10)}) as conn:
        it = sql_rows(conn, "t", "k0", batch_size=1)
        assert [next(it)[1] for _ in range(3)] == [[0], [10], [20]]
        _insert(conn, key, (15,), 1)  # behind the cursor: not seen
        _insert(conn, key, (25,), 1)  # after the cursor: seen
        _delete(conn, key, (50,))  # ahead: not seen
        _delete(conn, key, (10,))  # behind: no effect
        assert [c[0] for _, c in _take(it, 10)] == [25, 30, 40, 60, 70, 80, 90]


def test_a_page_already_read_is_yielded_as_it_was_read() -> None:
    key = ("k0",)
    with _db(key, {(i,): i for i in range(8)}) as conn:
        it = sql_rows(conn, "t", "k0", batch_size=4)
        next(it)  # reads the page 0..3
        _delete(conn, key, (2,))  # in the page already read: still yielded
        conn.execute("UPDATE t SET v = 100 WHERE k0 = 3")  # yielded with its old value
        _delete(conn, key, (5,))  # in a page not read yet: not seen
        _insert(conn, key, (9,), 9)  # after the page: seen
        got = [(c[0], r["v"]) for r, c in _take(it, 8)]
        assert got == [(1, 1), (2, 2), (3, 3), (4, 4), (6, 6), (7, 7), (9, 9)]


def test_columns_subset_keeps_keys_out_of_the_row() -> None:
    with _db(("k0", "k1"), {(1, "a"): 5, (1, "b"): 6, (2, "a"): 7}) as conn:
        got = _take(sql_rows(conn, "t", ("k0", "k1"), columns=["v"], batch_size=2), 3)
        assert got == [({"v": 5}, [1, "a"]), ({"v": 6}, [1, "b"]), ({"v": 7}, [2, "a"])]


def test_composite_key_pages_use_the_index() -> None:
    with _db(("k0", "k1"), {(i % 7, str(i)): i for i in range(50)}) as conn:
        sent: list[str] = []
        conn.set_trace_callback(sent.append)
        _take(sql_rows(conn, "t", ("k0", "k1"), cursor=[3, "10"], batch_size=10), 50)
        conn.set_trace_callback(None)
        assert "OFFSET" not in " ".join(sent).upper()
        pages = [statement for statement in sent if "ORDER BY" in statement]
        assert len(pages) == len(sent) - 1  # and the one look at the table's columns
        for statement in pages:
            plan = " ".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + statement))
            assert "INDEX" in plan and "TEMP B-TREE" not in plan, plan


def test_null_key_is_reported() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a INTEGER, b TEXT, v INTEGER)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", [(1, "x", 1), (2, None, 2), (None, "z", 3)])
    with pytest.raises(ResumableError, match="NULL"):
        _take(sql_rows(conn, "t", "a"), 3)
    with pytest.raises(ResumableError, match="'b' is NULL"):
        _take(sql_batches(conn, "t", ("a", "b"), where="a IS NOT NULL"), 3)
    not_null = "a IS NOT NULL AND b IS NOT NULL"
    got = [c for _, c in _take(sql_rows(conn, "t", ("a", "b"), where=not_null), 3)]
    assert got == [[1, "x"]]


def test_non_json_and_duplicate_keys_are_reported() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a, v)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(b"\x01", 1), (1, 2), (1, 3)])
    with pytest.raises(ResumableError, match="bytes"):
        _take(sql_rows(conn, "t", "a", where="typeof(a) = 'blob'"), 3)
    with pytest.raises(ResumableError, match="not unique"):
        _take(sql_rows(conn, "t", "a", where="typeof(a) = 'integer'"), 3)


@pytest.mark.parametrize(
    ("key", "cursor"),
    [
        ("id", [1, 2]),
        (("a", "b"), [1]),
        ("id", 5),
        ("id", "5"),
        ("id", [None]),
        (("a", "b"), [1, b"x"]),
        ("id", {"id": 1}),
    ],
)
def test_bad_cursor_names_the_value(key, cursor) -> None:
    conn = sqlite3.connect(":memory:")
    with pytest.raises(ResumableError, match="cursor") as err:
        sql_rows(conn, "t", key, cursor=cursor)
    assert repr(cursor) in str(err.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"table": 't"; DROP TABLE t; --'},
        {"table": "t x"},
        {"table": "main..t"},
        {"key": "id; DROP TABLE t"},
        {"key": ()},
        {"key": ("a", "a")},
        {"columns": ["v", "1=1) OR (1"]},
        {"columns": "a, b"},
        {"columns": []},
        {"batch_size": 0},
        {"batch_size": 2.5},
        {"where": "  "},
        {"params": "abc"},
    ],
)
def test_bad_arguments_are_refused_before_any_sql(kwargs: dict) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a, v)")
    args = {"table": "t", "key": "id"} | kwargs
    sent: list[str] = []
    conn.set_trace_callback(sent.append)
    with pytest.raises(ResumableError):
        sql_rows(conn, args.pop("table"), args.pop("key"), **args)
    assert sent == []


def test_schema_qualified_table_and_reserved_word_column() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute('CREATE TABLE "order" ("select" INTEGER PRIMARY KEY, v)')
    conn.executemany('INSERT INTO "order" VALUES (?, ?)', [(2, "b"), (1, "a")])
    got = _take(sql_rows(conn, "main.order", "select", columns=["v"]), 2)
    assert got == [({"v": "a"}, [1]), ({"v": "b"}, [2])]


# -- names checked against the table, and the database's order ----------------------------------


def _users() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, v INTEGER)")
    conn.executemany("INSERT INTO users VALUES (?, ?, ?)",
                     [(i, f"u{i}@x", i * 10) for i in range(1, 101)])
    return conn


@pytest.mark.parametrize("fn", [sql_rows, sql_batches])
@pytest.mark.parametrize("batch_size", [1, 7])
def test_a_misspelled_key_is_named_with_the_table_and_a_suggestion(fn, batch_size) -> None:
    conn = _users()
    with pytest.raises(ResumableError, match=r"table 'users' has no key column 'idd'") as info:
        list(fn(conn, "users", "idd", batch_size=batch_size))
    assert "did you mean 'id'?" in str(info.value)


def test_a_misspelled_column_is_named_instead_of_read_as_a_literal() -> None:
    conn = _users()
    with pytest.raises(ResumableError, match=r"table 'users' has no column 'emial'.*'email'"):
        list(sql_rows(conn, "users", "id", columns=["emial", "v"]))


def test_names_match_as_the_database_matches_them_and_rowid_is_a_key() -> None:
    conn = _users()
    rows = list(sql_rows(conn, "users", "ID", columns=["Email"], batch_size=40))
    assert len(rows) == 100 and rows[0] == ({"email": "u1@x"}, [1])  # as SQLite names it
    assert [c for _, c in sql_rows(conn, "users", "rowid", columns=["v"])][-1] == [100]


def test_a_missing_table_is_named() -> None:
    conn = _users()
    with pytest.raises(ResumableError, match=r"sql_rows: table 'user' cannot be read.*exists"):
        sql_rows(conn, "user", "id")


@pytest.mark.parametrize("batch_size", [1, 2, 5])
def test_a_nocase_key_iterates_and_resumes_in_the_databases_order(batch_size) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE tags (name TEXT PRIMARY KEY COLLATE NOCASE, v INTEGER)")
    names = ["b", "A", "a2", "C", "aa", "B2", "c3", "Ab"]
    conn.executemany("INSERT INTO tags VALUES (?, ?)", [(n, i) for i, n in enumerate(names)])
    order = [n for (n,) in conn.execute("SELECT name FROM tags ORDER BY name")]
    assert order != sorted(order)  # Python's order is not the database's
    rows = sql_rows(conn, "tags", "name", batch_size=batch_size)
    assert rows.vouches_for_order is True and iter(rows) is rows
    got = list(rows)
    assert [c for _, c in got] == [[n] for n in order]
    for i, (_, cursor) in enumerate(got):
        rest = [c for _, c in sql_rows(conn, "tags", "name", batch_size=batch_size,
                                       cursor=_via_json(cursor))]
        assert rest == [[n] for n in order[i + 1:]]
    pages = sql_batches(conn, "tags", "name", batch_size=batch_size)
    assert pages.vouches_for_order is True
    assert [r["name"] for rs, _ in pages for r in rs] == order


def test_closing_an_enumeration_reads_no_further_page() -> None:
    conn = _users()
    rows = sql_rows(conn, "users", "id", batch_size=10)
    assert next(rows)[1] == [1]
    rows.close()
    assert list(rows) == []
