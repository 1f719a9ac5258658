"""Rows of a CSV file as ``(row, cursor)`` pairs, resumable with one ``seek``.

The file is read in binary, one physical line at a time, and each line is handed to
:func:`csv.reader`, which pulls lines only as it needs them. After a record is parsed, the
byte position of the file is therefore exactly the start of the next record, even when quoted
fields hold separators, quotes or newlines. That position goes into the cursor, so resuming is
a ``seek``: the rows before the cursor are never read again.

Lines end at ``\\n``, ``\\r\\n`` or a lone ``\\r``, as with ``open(path, newline="")``, so the
rows are exactly those of ``csv.reader`` (``header=False``) or ``csv.DictReader``
(``header=True``) on the whole file, including their handling of short, long and blank rows.
A UTF-8 byte order mark at the start of the file is skipped.

Cursor
------
A JSON object (``dict``)::

    {"offset": 1234, "row": 17, "size": 50000, "sample": "9f0c...", "tail": "41be..."}

``offset``
    byte offset of the next record (just after the row completed).
``row``
    1-based number of the row completed (data rows only; the header is not counted).
``size``, ``sample``, ``tail``
    a fingerprint of the file: its size in bytes, a hash of up to sixteen 4 KiB blocks at
    fixed places (the first block, the last block and evenly spaced ones between them; the
    whole file when it is at most 64 KiB), and a hash of the 64 bytes before ``offset``.

What the fingerprint catches, and what it cannot
-------------------------------------------------
Resuming from a cursor is refused with :class:`ResumableError` when the size differs (rows
added, removed, appended or truncated), when a sampled block differs (the header and the
first rows, the last rows, or anything in a file of at most 64 KiB), or when the bytes just
before the offset differ (the offset no longer ends the same row). Together these catch every
change that moves the offset off its record boundary, except by a coincidence of content.

It cannot see an edit that keeps the size and touches none of the sampled blocks nor the
64-byte window, e.g. one value changed in place, with the same length, in the middle of a
large file. The modification time is deliberately not part of the fingerprint: a fresh copy
of the same file (downloaded again by a new container after a deploy) resumes fine. Changing
the dialect (``fmtparams``) or ``header`` between runs is not detected either.

Limits: the encoding must be ASCII-compatible (UTF-8, Latin-1, cp1252, ...; not UTF-16),
since lines are split on bytes; a single physical line is held in memory whole.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import logging
import os
import re
from collections.abc import Iterator
from typing import IO, Any

from ..errors import ResumableError

__all__ = ["CsvCursor", "CsvRow", "csv_rows"]

logger = logging.getLogger(__name__)

CsvRow = dict[str | None, Any] | list[str]
"""A row: a ``dict`` as from ``csv.DictReader`` (``header=True``) or a ``list`` of fields."""

CsvCursor = dict[str, Any]
"""A cursor of :func:`csv_rows`: ``{"offset", "row", "size", "sample", "tail"}``."""

_INT_KEYS = ("offset", "row", "size")
_STR_KEYS = ("sample", "tail")
_KEYS = frozenset(_INT_KEYS + _STR_KEYS)
_BLOCK = 4096
_BLOCKS = 16
_TAIL = 64
_LONE_CR = re.compile(rb"\r(?!\n)")
_PROBE = "\r\n,;|\t\"' abcXYZ019"


def csv_rows(
    path: str | os.PathLike[str],
    cursor: CsvCursor | None = None,
    *,
    header: bool = True,
    encoding: str = "utf-8",
    **fmtparams: Any,
) -> Iterator[tuple[CsvRow, CsvCursor]]:
    """Yield ``(row, cursor)`` for each row of the CSV file at ``path`` after ``cursor``.

    ``cursor=None`` starts at the first row. ``fmtparams`` go to :func:`csv.reader`
    (``delimiter``, ``quotechar``, ...). A missing file, a bad encoding or dialect, or a
    cursor of the wrong shape raise :class:`ResumableError` at the call; a file that changed
    since ``cursor`` was written raises it when iteration starts.
    """
    name = os.fspath(path)
    codec = _line_codec(encoding)
    try:
        csv.reader((), **fmtparams)
    except (TypeError, csv.Error) as exc:
        raise ResumableError(
            f"csv_rows: dialect {fmtparams!r} is not valid for csv.reader: {exc}"
        ) from None
    if cursor is not None:
        _check_shape(cursor)
    try:
        os.stat(name)
    except FileNotFoundError:
        raise _missing(name) from None
    except OSError as exc:
        raise ResumableError(f"csv_rows: cannot read {name!r}: {exc.strerror}") from None
    return _rows(name, cursor, header, codec, fmtparams)


def _rows(
    name: str,
    cursor: CsvCursor | None,
    header: bool,
    codec: str,
    fmtparams: dict[str, Any],
) -> Iterator[tuple[CsvRow, CsvCursor]]:
    try:
        f = open(name, "rb")  # noqa: SIM115 - closed by the with-block below
    except FileNotFoundError:
        raise _missing(name) from None
    except OSError as exc:
        raise ResumableError(f"csv_rows: cannot read {name!r}: {exc.strerror}") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        sample = _sample(f, size)
        if cursor is not None:
            _check_content(name, cursor, size, sample)
        f.seek(0)
        start = len(codecs.BOM_UTF8) if f.read(3) == codecs.BOM_UTF8 else 0
        feed = _LineFeed(f, name, codec)
        feed.seek(start)
        reader = csv.reader(feed, **fmtparams)
        fieldnames: list[str] | None = None
        if header:
            fieldnames = _next_record(reader, feed)
            if fieldnames is None:
                return
        done = 0
        if cursor is not None:
            _check_offset(f, name, cursor, feed.pos)
            feed.seek(cursor["offset"])
            reader = csv.reader(feed, **fmtparams)
            done = cursor["row"]
            logger.debug("csv_rows: resuming %s at byte %d after row %d", name, feed.pos, done)
        try:
            for record in reader:
                if fieldnames is None:
                    row: CsvRow = record
                elif not record:
                    continue
                else:
                    row = _as_dict(fieldnames, record)
                done += 1
                yield (
                    row,
                    {
                        "offset": feed.pos,
                        "row": done,
                        "size": size,
                        "sample": sample,
                        "tail": _digest(feed.recent),
                    },
                )
        except csv.Error as exc:
            raise ResumableError(
                f"csv_rows: {name!r} is not valid CSV after row {done} "
                f"(near byte {feed.pos}): {exc}"
            ) from None


class _LineFeed:
    """Decoded physical lines of a binary file, with the byte offset after the last one."""

    def __init__(self, f: IO[bytes], name: str, codec: str) -> None:
        self._f = f
        self._name = name
        self._codec = codec
        self.pos = 0
        self.recent = b""

    def seek(self, offset: int) -> None:
        """Continue from ``offset``; ``recent`` becomes the bytes before it."""
        lo = max(0, offset - _TAIL)
        self._f.seek(lo)
        self.recent = self._f.read(offset - lo)
        self.pos = offset

    def __iter__(self) -> Iterator[str]:
        readline = self._f.readline
        codec = self._codec
        while True:
            chunk = readline()
            if not chunk:
                return
            cr = chunk.find(b"\r")
            if cr == -1 or cr == len(chunk) - 1 or (cr == len(chunk) - 2 and chunk[-1] == 10):
                pieces: list[bytes] | tuple[bytes] = (chunk,)
            else:
                pieces = _split_lone_cr(chunk)
            for piece in pieces:
                try:
                    line = piece.decode(codec)
                except UnicodeDecodeError as exc:
                    raise ResumableError(
                        f"csv_rows: {self._name!r} is not valid {codec} at byte "
                        f"{self.pos + exc.start}; pass the file's encoding"
                    ) from None
                self.pos += len(piece)
                if len(piece) >= _TAIL:
                    self.recent = piece[-_TAIL:]
                else:
                    self.recent = (self.recent + piece)[-_TAIL:]
                yield line


def _split_lone_cr(chunk: bytes) -> list[bytes]:
    """Split a ``readline`` chunk after each ``\\r`` that is not followed by ``\\n``."""
    pieces = []
    last = 0
    for m in _LONE_CR.finditer(chunk):
        pieces.append(chunk[last : m.end()])
        last = m.end()
    if last < len(chunk):
        pieces.append(chunk[last:])
    return pieces


def _next_record(reader: Iterator[list[str]], feed: _LineFeed) -> list[str] | None:
    try:
        return next(reader, None)
    except csv.Error as exc:
        raise ResumableError(
            f"csv_rows: {feed._name!r} has no valid CSV header (near byte {feed.pos}): {exc}"
        ) from None


def _as_dict(fieldnames: list[str], record: list[str]) -> dict[str | None, Any]:
    """Map a record to a dict exactly as ``csv.DictReader`` does with its defaults."""
    row: dict[str | None, Any] = dict(zip(fieldnames, record, strict=False))
    lf, lr = len(fieldnames), len(record)
    if lf < lr:
        row[None] = record[lf:]
    elif lf > lr:
        for key in fieldnames[lr:]:
            row[key] = None
    return row


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def _sample(f: IO[bytes], size: int) -> str:
    """Hash the whole file when small, else ``_BLOCKS`` blocks from first to last."""
    h = hashlib.blake2b(digest_size=8)
    h.update(size.to_bytes(8, "little"))
    if size <= _BLOCK * _BLOCKS:
        f.seek(0)
        h.update(f.read(size))
    else:
        for i in range(_BLOCKS):
            f.seek(i * (size - _BLOCK) // (_BLOCKS - 1))
            h.update(f.read(_BLOCK))
    return h.hexdigest()


def _check_shape(cursor: Any) -> None:
    ok = (
        isinstance(cursor, dict)
        and cursor.keys() == _KEYS
        and all(type(cursor[k]) is int and cursor[k] >= 0 for k in _INT_KEYS)
        and all(isinstance(cursor[k], str) for k in _STR_KEYS)
        and cursor["offset"] <= cursor["size"]
    )
    if not ok:
        raise ResumableError(
            f"csv_rows: cursor {cursor!r} is not a csv_rows cursor; pass None or a dict with "
            "int offset <= size, int row, str sample and str tail, as yielded by csv_rows"
        )


def _check_content(name: str, cursor: CsvCursor, size: int, sample: str) -> None:
    if cursor["size"] != size:
        raise ResumableError(
            f"csv_rows: {name!r} changed since the cursor was written: it had "
            f"{cursor['size']} bytes, now {size}; start over with cursor=None"
        )
    if cursor["sample"] != sample:
        raise ResumableError(
            f"csv_rows: {name!r} changed since the cursor was written: sampled content "
            "differs; start over with cursor=None"
        )


def _check_offset(f: IO[bytes], name: str, cursor: CsvCursor, data_start: int) -> None:
    offset = cursor["offset"]
    if offset < data_start:
        raise ResumableError(
            f"csv_rows: cursor {cursor!r} points into the header of {name!r} "
            f"(data starts at byte {data_start}); pass a cursor yielded with the same header="
        )
    lo = max(0, offset - _TAIL)
    f.seek(lo)
    if _digest(f.read(offset - lo)) != cursor["tail"]:
        raise ResumableError(
            f"csv_rows: {name!r} changed since the cursor was written: the bytes before "
            f"offset {offset} differ; start over with cursor=None"
        )


def _line_codec(encoding: str) -> str:
    """Return the codec name used per line, refusing encodings that split on bytes badly."""
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise ResumableError(
            f"csv_rows: encoding {encoding!r} is unknown; pass a codec name such as 'utf-8'"
        ) from None
    if codec == "utf-8-sig":
        codec = "utf-8"
    try:
        ascii_ok = _PROBE.encode(codec) == _PROBE.encode("ascii")
    except UnicodeError:
        ascii_ok = False
    if not ascii_ok:
        raise ResumableError(
            f"csv_rows: encoding {encoding!r} is not ASCII-compatible; csv_rows splits lines "
            "on bytes, so pass e.g. 'utf-8' or 'latin-1' (convert UTF-16 files first)"
        )
    return codec


def _missing(name: str) -> ResumableError:
    return ResumableError(f"csv_rows: {name!r} does not exist; pass the path of a CSV file")
