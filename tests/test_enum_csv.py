"""csv_rows: rows equal the csv module's parse, and every cursor resumes exactly."""

from __future__ import annotations

import codecs
import csv
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import deploysim.strategies.resumable.enumerators.csv_rows as csv_rows_module
from deploysim.strategies.resumable.enumerators.csv_rows import csv_rows
from deploysim.strategies.resumable.errors import ResumableError

# Fields mix awkward pieces (separators, quotes, every line ending) with arbitrary text.
_PIECES = st.sampled_from([",", ";", '"', "'", "\n", "\r", "\r\n", " ", "é", "日本", "😀", "a"])
_FIELD = st.lists(
    st.one_of(_PIECES, st.text(st.characters(exclude_categories=["Cs"]), max_size=4)),
    max_size=5,
).map("".join)
_ROWS = st.lists(st.lists(_FIELD, max_size=4), max_size=8)
_DIALECT = st.fixed_dictionaries(
    {
        "delimiter": st.sampled_from([",", ";", "\t"]),
        "lineterminator": st.sampled_from(["\r\n", "\n", "\r"]),
        "quoting": st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
    }
)


@contextmanager
def _csv_file(
    rows: list[list[str]], dialect: dict, *, bom: bool = False, trailing: bool = True
) -> Iterator[Path]:
    """Write ``rows`` with csv.writer into a fresh temporary file."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "data.csv"
        with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
            csv.writer(f, **dialect).writerows(rows)
        if not trailing:
            data = path.read_bytes()
            term = dialect["lineterminator"].encode()
            if data.endswith(term):
                path.write_bytes(data[: -len(term)])
        yield path


def _reference(path: Path, header: bool, dialect: dict) -> list:
    """The csv module's own parse of the whole file."""
    params = {k: v for k, v in dialect.items() if k != "lineterminator"}
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f, **params) if header else csv.reader(f, **params)
        return list(reader)


def _at_least(n: int) -> int:
    """``n`` examples, or more when the loaded hypothesis profile asks for more."""
    return max(n, settings().max_examples)


def _via_json(cursor: dict) -> dict:
    return json.loads(json.dumps(cursor))


@settings(max_examples=_at_least(200), deadline=None)
@given(
    rows=_ROWS,
    dialect=_DIALECT,
    header=st.booleans(),
    bom=st.booleans(),
    trailing=st.booleans(),
)
def test_rows_match_csv_module_and_every_cursor_resumes_exactly(
    rows: list[list[str]], dialect: dict, header: bool, bom: bool, trailing: bool
) -> None:
    params = {k: v for k, v in dialect.items() if k != "lineterminator"}
    with _csv_file(rows, dialect, bom=bom, trailing=trailing) as path:
        expected = _reference(path, header, dialect)
        full = list(csv_rows(path, header=header, **params))
        assert [row for row, _ in full] == expected
        assert [c["row"] for _, c in full] == list(range(1, len(full) + 1))
        offsets = [c["offset"] for _, c in full]
        assert offsets == sorted(offsets)
        if full and not header:  # DictReader skips blank lines after the last row
            assert offsets[-1] == path.stat().st_size
        for i, (_, cursor) in enumerate(full):
            rest = list(csv_rows(path, _via_json(cursor), header=header, **params))
            assert [row for row, _ in rest] == expected[i + 1 :]
            assert [c for _, c in rest] == [c for _, c in full[i + 1 :]]


def test_quoted_newlines_crlf_bom_and_no_trailing_newline(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(
        codecs.BOM_UTF8 + b'id,text\r\n1,"two\r\nlines, and ""quotes"""\r\n2,\xc3\xa9\r\n3,last'
    )
    got = list(csv_rows(path))
    assert [r for r, _ in got] == [
        {"id": "1", "text": 'two\r\nlines, and "quotes"'},
        {"id": "2", "text": "é"},
        {"id": "3", "text": "last"},
    ]
    assert [r for r, _ in csv_rows(path, got[0][1])] == [r for r, _ in got[1:]]
    assert list(csv_rows(path, got[-1][1])) == []


def test_empty_file_and_header_only(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert list(csv_rows(empty)) == []
    assert list(csv_rows(empty, header=False)) == []
    only = tmp_path / "only.csv"
    only.write_bytes(b"a,b\n")
    assert list(csv_rows(only)) == []


def test_resume_seeks_instead_of_rereading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.csv"
    path.write_text("n\n" + "".join(f"{i}\n" for i in range(1000)))
    cursor = list(csv_rows(path))[899][1]
    lines_read = 0
    real_open = open

    class Counting:
        def __init__(self, f):
            self._f = f

        def readline(self):
            nonlocal lines_read
            lines_read += 1
            return self._f.readline()

        def __getattr__(self, name):
            return getattr(self._f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._f.close()

    monkeypatch.setattr(
        csv_rows_module, "open", lambda *a, **k: Counting(real_open(*a, **k)), raising=False
    )
    rest = [r["n"] for r, _ in csv_rows(path, cursor)]
    assert rest == [str(i) for i in range(900, 1000)]
    assert lines_read <= 1 + 100 + 2  # header, the remaining rows, end of file


def _change(path: Path, data: bytes) -> None:
    path.write_bytes(data)


@pytest.mark.parametrize(
    "edit",
    [
        "append",
        "truncate",
        "shorten_row_behind",
        "same_size_edit_behind",
        "same_size_header_edit",
    ],
)
def test_changed_file_is_reported_with_its_path(tmp_path: Path, edit: str) -> None:
    path = tmp_path / "t.csv"
    lines = ["id,name"] + [f"{i},name-{i:05d}" for i in range(20_000)]
    data = "\n".join(lines) + "\n"
    path.write_text(data)
    cursor = None
    for row, c in csv_rows(path):
        if row["id"] == "10000":
            cursor = c
            break
    assert cursor is not None
    if edit == "append":
        changed = data + "20000,late\n"
    elif edit == "truncate":
        changed = data[: len(data) // 2]
    elif edit == "shorten_row_behind":
        changed = data.replace("9998,name-09998\n", "9998,n\n")
        changed = changed.replace("15000,name-15000", "15000,name-15000" + "x" * 9)
    elif edit == "same_size_edit_behind":
        changed = data.replace("9999,name-09999", "9999,name-0999X")
    else:
        changed = data.replace("id,name", "ID,name")
    assert changed != data
    _change(path, changed.encode())
    with pytest.raises(ResumableError, match=re.escape(repr(str(path)))) as err:
        list(csv_rows(path, cursor))
    if len(changed) != len(data):
        assert f"{len(data)} bytes, now {len(changed)}" in str(err.value)


def test_identical_copy_with_new_mtime_resumes(tmp_path: Path) -> None:
    src = tmp_path / "a.csv"
    src.write_text("id\n" + "".join(f"{i}\n" for i in range(50)))
    cursor = list(csv_rows(src))[9][1]
    dst = tmp_path / "b.csv"
    shutil.copyfile(src, dst)
    os.utime(dst, ns=(1, 1))
    assert [r["id"] for r, _ in csv_rows(dst, cursor)] == [str(i) for i in range(10, 50)]


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(ResumableError, match=r"nope\.csv"):
        csv_rows(path)


@pytest.mark.parametrize(
    "cursor",
    [
        5,
        [10, 2],
        {"offset": 3},
        {"offset": -1, "row": 1, "size": 10, "sample": "x", "tail": "y"},
        {"offset": 11, "row": 1, "size": 10, "sample": "x", "tail": "y"},
        {"offset": "3", "row": 1, "size": 10, "sample": "x", "tail": "y"},
        {"offset": 3, "row": 1, "size": 10, "sample": "x", "tail": "y", "extra": 1},
    ],
)
def test_bad_cursor_names_the_value(tmp_path: Path, cursor: object) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a\n1\n")
    with pytest.raises(ResumableError, match="cursor") as err:
        csv_rows(path, cursor)  # type: ignore[arg-type]
    assert repr(cursor) in str(err.value)


def test_cursor_into_the_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a\n1\n2\n")
    first = next(csv_rows(path, header=False))[1]
    assert [r for r, _ in csv_rows(path, first, header=True)] == [{"a": "1"}, {"a": "2"}]
    head = dict(first, offset=1)
    with pytest.raises(ResumableError, match="header"):
        list(csv_rows(path, head))


def test_bad_encoding_and_undecodable_bytes(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"a\n\xff\n")
    with pytest.raises(ResumableError, match="utf-16"):
        csv_rows(path, encoding="utf-16")
    with pytest.raises(ResumableError, match="nope"):
        csv_rows(path, encoding="nope")
    with pytest.raises(ResumableError, match="byte 2"):
        list(csv_rows(path))
    assert [r for r, _ in csv_rows(path, encoding="latin-1")] == [{"a": "ÿ"}]


def test_invalid_csv_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('a\n"x"y\n')
    with pytest.raises(ResumableError, match="not valid CSV"):
        list(csv_rows(path, strict=True))
