"""Rows of a SQL table in key order, by keyset pagination, on any DB-API connection.

Each page is one query: the rows whose key is after the last key seen, in key order, at most
``batch_size`` of them. For a key ``(a, b)`` the query is::

    SELECT "a", "b", <columns> FROM "table"
    WHERE (<where>) AND "a" >= ? AND ("a" > ? OR ("a" = ? AND "b" > ?))
    ORDER BY "a", "b" LIMIT <batch_size>

The leading ``"a" >= ?`` repeats what the ``OR`` says, in a form every planner can turn into a
range scan of an index on ``(a, b)``. There is no ``OFFSET``: a page costs the same at the
start of the table and at the end, and resuming from a cursor is one indexed query.

Rows are ``dict``s mapping the selected column names to values (names as the driver reports
them in ``cursor.description``).

Cursor
------
The list of key values of the row completed, in key order: ``[42]`` for ``key="id"``,
``[7, "x"]`` for ``key=("a", "b")``. It must be JSON-serializable, so key values must be int,
float, str or bool; NULL keys, and values such as bytes or dates, raise :class:`ResumableError`.

Rows changed during iteration
-----------------------------
Each page is read when the previous one is used up, and nothing is ever read twice:

- a row inserted with a key after the last key of the page already read is seen;
- a row inserted with a key before that is not seen (in particular, nothing inserted behind
  the cursor is ever seen);
- a row deleted before its page is read is not seen; a row deleted after its page was read is
  still yielded, with the values it had when the page was read;
- no key is yielded twice, so no row is seen twice as long as keys are not updated (a row
  whose key is moved forward is seen again under its new key).

With ``batch_size=1`` "the page already read" is the cursor itself, at one query per row.
A resumed run reads from the cursor, so it sees every row after the cursor as of then.

Order
-----
Rows come in the database's order of the key, by the key columns' collation (``COLLATE NOCASE``,
say), which Python's ordering of the cursors need not match. So :func:`sql_rows` and
:func:`sql_batches` return a :class:`SqlEnumerator`, whose ``vouches_for_order`` tells the runner
to trust that order rather than check the cursors' direction itself.

Names
-----
The table and the key and column names are checked against the table's columns (from a
``SELECT * ... LIMIT 0``) before the first page: a missing table or an unknown column raises
:class:`ResumableError` naming it (SQLite would otherwise read an unknown double-quoted name as
a string literal). SQLite's ``rowid`` (``oid``, ``_rowid_``) is accepted as a key.

Requirements: the key columns must be unique together (a primary key or a unique index;
duplicates next to each other in a page raise :class:`ResumableError`, duplicates that fall
across a page boundary would be skipped); an index on the key columns keeps pages cheap.
Identifiers are checked (letters, digits and ``_``; ``schema.table`` allowed) and double
quoted; ``where`` is trusted SQL with its values passed in ``params``, using the driver's
placeholder (``?`` for sqlite3, ``%s`` for format/pyformat drivers). ``LIMIT`` is used, as in
SQLite, PostgreSQL and MySQL (with ``ANSI_QUOTES``).
"""

from __future__ import annotations

import difflib
import logging
import operator
import re
import sys
from collections.abc import Generator, Iterable, Iterator, Sequence
from itertools import chain, islice
from typing import Any

from ..errors import ResumableError

__all__ = ["SqlCursor", "SqlEnumerator", "SqlRow", "sql_batches", "sql_rows"]

logger = logging.getLogger(__name__)

SqlRow = dict[str, Any]
"""A row: the selected column names mapped to their values."""

SqlCursor = list[Any]
"""A cursor of :func:`sql_rows` and :func:`sql_batches`: the key values of the row completed."""

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_KEY_TYPES = frozenset({int, float, str, bool})
_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}
_ROWID = frozenset({"rowid", "oid", "_rowid_"})  # SQLite's implicit key, not in SELECT *


class SqlEnumerator(Iterator[tuple[Any, SqlCursor]]):
    """What :func:`sql_rows` and :func:`sql_batches` return: an iterator of ``(row, cursor)``
    (or ``(rows, cursor)``) pairs in the database's key order. ``vouches_for_order`` is True:
    the database orders the keys by their collation (``COLLATE NOCASE``, say), which Python's
    comparison of the cursors need not agree with, so the runner does not check their
    direction. ``close()`` ends the enumeration early."""

    __slots__ = ("_gen",)
    vouches_for_order = True

    def __init__(self, gen: Generator[tuple[Any, SqlCursor], None, None]) -> None:
        self._gen = gen

    def __iter__(self) -> SqlEnumerator:
        return self

    def __next__(self) -> tuple[Any, SqlCursor]:
        return next(self._gen)

    def close(self) -> None:
        """Stop the enumeration: no further page is read."""
        self._gen.close()


def sql_rows(
    conn: Any,
    table: str,
    key: str | Sequence[str] = "id",
    *,
    columns: str | Sequence[str] = "*",
    where: str | None = None,
    params: Sequence[Any] = (),
    batch_size: int = 1000,
    cursor: SqlCursor | None = None,
) -> SqlEnumerator:
    """Yield ``(row, cursor)`` for each row of ``table`` after ``cursor``, in ``key`` order.

    ``columns`` is ``"*"`` or a list of column names; ``where`` is an SQL condition with
    ``params`` for its placeholders; ``batch_size`` rows are read per query. The table and the
    names are checked at once (ResumableError naming the one that is missing).
    """
    query = _Query("sql_rows", conn, table, key, columns, where, params, batch_size, cursor)
    return SqlEnumerator(_rows(query))


def sql_batches(
    conn: Any,
    table: str,
    key: str | Sequence[str] = "id",
    *,
    columns: str | Sequence[str] = "*",
    where: str | None = None,
    params: Sequence[Any] = (),
    batch_size: int = 1000,
    cursor: SqlCursor | None = None,
) -> SqlEnumerator:
    """Yield ``(rows, cursor)`` per page of at most ``batch_size`` rows after ``cursor``.

    Same arguments as :func:`sql_rows`; the cursor is the key of the last row of the page.
    """
    query = _Query("sql_batches", conn, table, key, columns, where, params, batch_size, cursor)
    return SqlEnumerator(_batches(query))


def _rows(query: _Query) -> Generator[tuple[SqlRow, SqlCursor], None, None]:
    nk = query.nk
    for names, page in query.pages():
        keys = query.page_keys(page)
        if nk == 1:
            for raw, k in zip(page, keys, strict=True):
                yield dict(zip(names, raw[1:], strict=True)), [k]
        else:
            for raw, k in zip(page, keys, strict=True):
                yield dict(zip(names, raw[nk:], strict=True)), list(k)


def _batches(query: _Query) -> Generator[tuple[list[SqlRow], SqlCursor], None, None]:
    nk = query.nk
    for names, page in query.pages():
        keys = query.page_keys(page)
        rows = [dict(zip(names, raw[nk:], strict=True)) for raw in page]
        yield rows, [keys[-1]] if nk == 1 else list(keys[-1])


class _Query:
    """The validated arguments of one enumeration, and the SQL of its pages."""

    def __init__(
        self,
        fn: str,
        conn: Any,
        table: str,
        key: str | Sequence[str],
        columns: str | Sequence[str],
        where: str | None,
        params: Sequence[Any],
        batch_size: int,
        cursor: SqlCursor | None,
    ) -> None:
        self.fn = fn
        self.conn = conn
        keys = [key] if isinstance(key, str) else list(key)
        if not keys or len(set(keys)) != len(keys):
            raise ResumableError(
                f"{fn}: key {key!r} must name one or more distinct columns, e.g. 'id'"
            )
        self.keys = tuple(keys)
        self.nk = len(keys)
        key_q = [_quote(fn, "key column", k) for k in keys]
        cols: list[Any] = []
        if isinstance(columns, str) and columns == "*":
            cols_q = ["*"]
        else:
            cols = [columns] if isinstance(columns, str) else list(columns)
            if not cols:
                raise ResumableError(f"{fn}: columns {columns!r} is empty; pass '*' or names")
            cols_q = [_quote(fn, "column", c) for c in cols]
        if type(batch_size) is not int or batch_size < 1:
            raise ResumableError(f"{fn}: batch_size {batch_size!r} must be an int >= 1")
        if where is not None and not (isinstance(where, str) and where.strip()):
            raise ResumableError(f"{fn}: where {where!r} must be a non-empty SQL string or None")
        if isinstance(params, str | bytes | dict):
            raise ResumableError(f"{fn}: params {params!r} must be a sequence of values")
        self.params = list(params)
        self.cursor = None if cursor is None else self._check_cursor(cursor)
        ph = _placeholder(fn, conn)
        table_q = _quote(fn, "table", table, True)
        self._check_names(table, table_q, cols)

        head = f"SELECT {', '.join(key_q + cols_q)} FROM {table_q}"
        tail = f" ORDER BY {', '.join(key_q)} LIMIT {batch_size}"
        cond = [f"({where})"] if where is not None else []
        self.first_sql = head + (f" WHERE {cond[0]}" if cond else "") + tail
        if self.nk == 1:
            after = [f"{key_q[0]} > {ph}"]
        else:
            terms = [
                "("
                + " AND ".join([*(f"{q} = {ph}" for q in key_q[:i]), f"{key_q[i]} > {ph}"])
                + ")"
                for i in range(self.nk)
            ]
            after = [f"{key_q[0]} >= {ph}", "(" + " OR ".join(terms) + ")"]
        self.next_sql = head + " WHERE " + " AND ".join(cond + after) + tail

    def _check_names(self, table: str, table_q: str, cols: list[str]) -> None:
        """Raise unless ``table`` can be read and has the key columns and ``cols``."""
        fn = self.fn
        c = self.conn.cursor()
        try:
            try:
                c.execute(f"SELECT * FROM {table_q} LIMIT 0")
            except Exception as exc:  # the driver's own error classes
                raise ResumableError(
                    f"{fn}: table {table!r} cannot be read ({type(exc).__name__}: {exc}); "
                    "check that it exists and its name (schema.table allowed)"
                ) from None
            names = [d[0] for d in c.description or ()]
        finally:
            c.close()
        if not names:  # the driver does not describe the table: nothing to check against
            return
        known = {str(n).lower() for n in names}
        for what, name in [*(("key column", k) for k in self.keys),
                           *(("column", col) for col in cols)]:
            if name.lower() in known or (what == "key column" and name.lower() in _ROWID):
                continue
            close = difflib.get_close_matches(name, [str(n) for n in names], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ResumableError(
                f"{fn}: table {table!r} has no {what} {name!r} (its columns: "
                f"{', '.join(map(str, names))}){hint}"
            )

    def next_params(self, last: Sequence[Any]) -> list[Any]:
        """Parameters of the page after key ``last``, in the order of ``next_sql``."""
        out = list(self.params)
        if self.nk > 1:
            out.append(last[0])
        for i in range(self.nk):
            out.extend(last[: i + 1])
        return out

    def pages(self) -> Iterator[tuple[list[str], list[Sequence[Any]]]]:
        """Yield ``(column names, raw rows)`` per non-empty page, until a page is empty."""
        last = self.cursor
        names: list[str] | None = None
        if last is not None:
            logger.debug("%s: resuming %s after key %r", self.fn, self.keys, last)
        while True:
            c = self.conn.cursor()
            try:
                if last is None:
                    c.execute(self.first_sql, self.params)
                else:
                    c.execute(self.next_sql, self.next_params(last))
                page = c.fetchall()
                if names is None:
                    names = [d[0] for d in c.description[self.nk :]]
            finally:
                c.close()
            if not page:
                return
            yield names, page
            last = page[-1][: self.nk]

    def _check_cursor(self, cursor: Any) -> list[Any]:
        if not isinstance(cursor, list | tuple) or len(cursor) != self.nk:
            raise ResumableError(
                f"{self.fn}: cursor {cursor!r} is not a list of {self.nk} value(s) for key "
                f"{self.keys!r}; pass None or a cursor yielded for this key"
            )
        if not _KEY_TYPES.issuperset(map(type, cursor)):
            raise ResumableError(
                f"{self.fn}: cursor {cursor!r} holds a value that is not int, float, str or "
                f"bool (NULL included) for key {self.keys!r}; pass a cursor yielded for this key"
            )
        return list(cursor)

    def page_keys(self, page: list[Sequence[Any]]) -> list[Any]:
        """The keys of a page's rows (values when the key has one column, else tuples),
        checked to be usable in a JSON cursor and distinct."""
        nk = self.nk
        if nk == 1:
            keys: list[Any] = [raw[0] for raw in page]
            values: Iterable[Any] = keys
        else:
            keys = [tuple(raw[:nk]) for raw in page]
            values = chain.from_iterable(keys)
        if not _KEY_TYPES.issuperset(map(type, values)) or any(
            map(operator.eq, keys, islice(keys, 1, None))
        ):
            self._bad_key(keys)
        return keys

    def _bad_key(self, keys: list[Any]) -> None:
        prev = None
        for k in keys:
            key = [k] if self.nk == 1 else list(k)
            for name, v in zip(self.keys, key, strict=True):
                if v is None:
                    raise ResumableError(
                        f"{self.fn}: key column {name!r} is NULL in a row with key {key!r}; "
                        "keyset iteration needs NOT NULL key columns (filter them out with where=)"
                    )
                if type(v) not in _KEY_TYPES:
                    raise ResumableError(
                        f"{self.fn}: key column {name!r} holds {v!r} ({type(v).__name__}), "
                        "which a JSON cursor cannot hold; use int, float or str key columns"
                    )
            if key == prev:
                raise ResumableError(
                    f"{self.fn}: key {self.keys!r} is not unique: {key!r} appears twice; use a "
                    "primary key or uniquely indexed columns"
                )
            prev = key


def _quote(fn: str, what: str, name: Any, dotted: bool = False) -> str:
    parts = name.split(".") if dotted and isinstance(name, str) else [name]
    if not all(isinstance(p, str) and _IDENT.match(p) for p in parts):
        raise ResumableError(
            f"{fn}: {what} {name!r} is not a plain identifier; use letters, digits and _"
            + (" (schema.table allowed)" if dotted else "")
        )
    return ".".join(f'"{p}"' for p in parts)


def _placeholder(fn: str, conn: Any) -> str:
    """The placeholder of the connection's driver, found from its module's ``paramstyle``."""
    module = type(conn).__module__
    style: Any = "qmark"
    while module:
        found = getattr(sys.modules.get(module), "paramstyle", None)
        if isinstance(found, str):
            style = found
            break
        module = module.rpartition(".")[0]
    if style not in _PLACEHOLDERS:
        raise ResumableError(
            f"{fn}: the driver's paramstyle {style!r} is not supported; "
            "use a qmark, format or pyformat driver"
        )
    return _PLACEHOLDERS[style]
