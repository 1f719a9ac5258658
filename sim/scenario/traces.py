"""Traces: the jobs and deploys of a real system, read from CSV files, to be replayed exactly.

A job trace (``[workload] arrivals = "trace"``) has a header row and one row per job::

    enqueued_at,duration,class,items
    0,42,report,
    90s,1h30m,backfill,5400
    2024-05-01T12:00:00Z,3.5,,        # (all rows timestamps, or all offsets)

``enqueued_at`` (required) is seconds, a duration text ("1h30m") or an ISO-8601 timestamp
(naive ones are UTC); ``duration`` (required, > 0) is seconds or a duration text; ``class``
(optional) names a job class; ``items`` (optional) is a whole number >= 1. A deploy trace
(``[deploys] schedule = "trace"``) has a column ``at`` of the same kind of times and an
optional ``label`` (a git tag, a CI run), kept for reporting only.

Rows are sorted by time (a file out of order is refused rather than silently re-ordered), a
file needs at least one row, unknown columns are errors that suggest the nearest name, and
every error is one line naming the field, the file and the line: ``workload.trace: jobs.csv
line 7: duration: '-3' must be more than 0``. Blank lines and lines starting with ``#`` are
skipped. Timestamps become offsets in seconds from the file's first time (the scenario reader
moves both traces to one origin when both hold timestamps: ``JobTrace.shifted``).

``write_job_trace`` and ``write_deploy_trace`` write the same formats, so that a harness which
really enqueued jobs and deployed can hand what it did to the simulator to replay.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from deploysim.strategies.hints import did_you_mean

from ..durations import parse_duration
from ..errors import SimError

__all__ = [
    "DEPLOY_COLUMNS",
    "JOB_COLUMNS",
    "DeployTrace",
    "JobTrace",
    "load_deploy_trace",
    "read_deploy_trace",
    "read_job_trace",
    "write_deploy_trace",
    "write_job_trace",
]

logger = logging.getLogger(__name__)

#: The columns of a job trace, the required ones first.
JOB_COLUMNS = ("enqueued_at", "duration", "class", "items")
_JOB_REQUIRED = ("enqueued_at", "duration")

#: The columns of a deploy trace, the required one first.
DEPLOY_COLUMNS = ("at", "label")
_DEPLOY_REQUIRED = ("at",)

_TIME_HINT = (
    "write seconds, a duration such as '1h30m' or a timestamp such as '2024-05-01T12:00:00Z'"
)


# -- values ------------------------------------------------------------------------------------


def _frozen(values: Any, dtype: Any) -> np.ndarray:
    array = np.array(values, dtype=dtype)
    if array.ndim != 1:
        array = array.reshape(-1)
    array.setflags(write=False)
    return array


def _check_times(times: np.ndarray, where: str) -> None:
    if len(times) and (not np.isfinite(times).all() or (times < 0).any()):
        raise SimError(f"{where}: must be finite seconds >= 0")
    if len(times) > 1 and (np.diff(times) < 0).any():
        raise SimError(f"{where}: must be sorted, earliest first")


@dataclass(frozen=True, eq=False)
class JobTrace:
    """Jobs as parallel arrays, one entry per job in enqueue order: ``enqueued_at`` (float64
    seconds from ``origin``, sorted), ``duration`` (float64 seconds > 0), ``items`` (int64, 0
    where the trace gives none: the job class's ``item_time`` decides) and ``classes`` (str,
    "" where none is given).

    ``source`` is the file the trace was read from (written back as the scenario's ``trace``
    key), ``origin`` the UTC time of offset 0 when the file held timestamps (else None), and
    ``lines`` the file line of each job, for errors found after reading. The arrays are
    read-only; two traces are equal when their jobs, source and origin are."""

    enqueued_at: np.ndarray
    duration: np.ndarray
    items: np.ndarray
    classes: np.ndarray
    source: str = "trace"
    origin: datetime | None = None
    lines: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        n = len(np.asarray(self.enqueued_at).reshape(-1))
        object.__setattr__(self, "enqueued_at", _frozen(self.enqueued_at, np.float64))
        object.__setattr__(self, "duration", _frozen(self.duration, np.float64))
        items = np.asarray(self.items)
        if items.size and not np.all(np.equal(np.mod(items, 1), 0)):
            raise SimError("JobTrace.items: must be whole numbers (0 = from the class)")
        object.__setattr__(self, "items", _frozen(items, np.int64))
        object.__setattr__(self, "classes", _frozen(list(self.classes), np.str_))
        if self.lines is None:
            object.__setattr__(self, "lines", _frozen(np.arange(2, n + 2), np.int64))
        else:
            object.__setattr__(self, "lines", _frozen(self.lines, np.int64))
        for name in ("duration", "items", "classes", "lines"):
            if len(getattr(self, name)) != n:
                raise SimError(
                    f"JobTrace.{name}: has {len(getattr(self, name))} entries for {n} jobs"
                )
        _check_times(self.enqueued_at, "JobTrace.enqueued_at")
        if n and (not np.isfinite(self.duration).all() or (self.duration <= 0).any()):
            raise SimError("JobTrace.duration: must be finite seconds > 0")
        if n and (self.items < 0).any():
            raise SimError("JobTrace.items: must be >= 1, or 0 for the class's item_time")
        if self.origin is not None and self.origin.tzinfo is None:
            object.__setattr__(self, "origin", self.origin.replace(tzinfo=UTC))

    def __len__(self) -> int:
        return len(self.enqueued_at)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, JobTrace):
            return NotImplemented
        return (
            self.source == other.source
            and self.origin == other.origin
            and np.array_equal(self.enqueued_at, other.enqueued_at)
            and np.array_equal(self.duration, other.duration)
            and np.array_equal(self.items, other.items)
            and np.array_equal(self.classes, other.classes)
        )

    def __hash__(self) -> int:
        return hash((self.source, self.origin, len(self)))

    def shifted(self, origin: datetime) -> JobTrace:
        """The same jobs with offsets counted from ``origin``, an earlier UTC time than this
        trace's own (which must have one)."""
        assert self.origin is not None
        shift = (self.origin - origin).total_seconds()
        return JobTrace(self.enqueued_at + shift, self.duration, self.items, self.classes,
                        self.source, origin, self.lines)


@dataclass(frozen=True)
class DeployTrace:
    """Deploy times (float seconds from ``origin``, sorted, each once) with their ``labels``
    ("" where none; reported only), the ``source`` file and the UTC ``origin`` of offset 0
    when the file held timestamps."""

    times: tuple[float, ...]
    labels: tuple[str, ...] = ()
    source: str = "trace"
    origin: datetime | None = None

    def __post_init__(self) -> None:
        times = tuple(float(t) for t in self.times)
        labels = tuple(str(label) for label in self.labels) or ("",) * len(times)
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "labels", labels)
        if len(labels) != len(times):
            raise SimError(
                f"DeployTrace.labels: has {len(labels)} entries for {len(times)} deploys"
            )
        _check_times(np.asarray(times, dtype=np.float64), "DeployTrace.times")
        if len(set(times)) != len(times):
            raise SimError("DeployTrace.times: lists a deploy twice")
        if self.origin is not None and self.origin.tzinfo is None:
            object.__setattr__(self, "origin", self.origin.replace(tzinfo=UTC))

    def __len__(self) -> int:
        return len(self.times)

    def array(self) -> np.ndarray:
        """The deploy times as a float64 array."""
        return np.asarray(self.times, dtype=np.float64)

    def shifted(self, origin: datetime) -> DeployTrace:
        """The same deploys with offsets counted from ``origin``, an earlier UTC time than this
        trace's own (which must have one)."""
        assert self.origin is not None
        shift = (self.origin - origin).total_seconds()
        return DeployTrace(tuple(t + shift for t in self.times), self.labels, self.source, origin)


# -- reading -----------------------------------------------------------------------------------


class _Rows:
    """The header and data rows of a trace file, with what errors need to name it."""

    def __init__(self, path: Path, shown: str, where: str, what: str,
                 columns: tuple[str, ...], required: tuple[str, ...]) -> None:
        self.shown = shown
        self.where = where
        try:
            with path.open(newline="", encoding="utf-8-sig") as handle:
                rows = [
                    (number, row)
                    for number, row in enumerate(csv.reader(handle), start=1)
                    if row and any(c.strip() for c in row) and not row[0].lstrip().startswith("#")
                ]
        except FileNotFoundError:
            raise SimError(f"{where}: file '{path}' not found; give the path of a CSV of "
                           f"{what} (relative to the scenario file's folder)") from None
        except IsADirectoryError:
            raise SimError(f"{where}: '{path}' is a folder; give the path of a CSV of {what}"
                           ) from None
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise SimError(f"{where}: cannot read '{path}' as CSV: {exc}") from None
        if not rows:
            raise SimError(f"{where}: {shown} is empty; give a header row "
                           f"({','.join(required)}) and one row per {what[:-1]}")
        line, header = rows[0]
        self.columns: dict[str, int] = {}
        for index, cell in enumerate(header):
            name = cell.strip().lower()
            if not name:
                self.error(line, f"column {index + 1} has no name; head every column")
            if _seconds(name) is not None:
                self.error(line, f"'{cell.strip()}' is not a column name; the first line must "
                                 f"be a header such as {','.join(required)}")
            if name not in columns:
                hint = did_you_mean(name, columns, "columns are", sep=" ", always=True)
                self.error(line, f"unknown column '{cell.strip()}'; {hint}")
            if name in self.columns:
                self.error(line, f"column '{name}' appears twice")
            self.columns[name] = index
        for name in required:
            if name not in self.columns:
                self.error(line, f"no '{name}' column; a trace needs {', '.join(required)}")
        self.data = rows[1:]
        if not self.data:
            raise SimError(f"{where}: {shown} has a header but no {what} below it")
        for number, row in self.data:
            if len(row) > len(header):
                self.error(number, f"{len(row)} cells, but the header names {len(header)} "
                                   "columns")

    def error(self, line: int, message: str) -> NoReturn:
        raise SimError(f"{self.where}: {self.shown} line {line}: {message}")

    def cell(self, row: list[str], name: str) -> str:
        """The stripped cell of ``row`` in column ``name`` ("" if the column or cell is
        absent)."""
        index = self.columns.get(name)
        return row[index].strip() if index is not None and index < len(row) else ""


def _seconds(text: str) -> float | None:
    """Seconds in ``text`` (a number, possibly negative, or a duration text), else None."""
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return number if math.isfinite(number) else None
    try:
        return parse_duration(text, "")
    except SimError:
        return None


def _timestamp(text: str) -> datetime | None:
    """The UTC time ``text`` spells in ISO 8601 (naive = UTC), else None."""
    try:
        time = datetime.fromisoformat(text)
    except ValueError:
        return None
    return time.replace(tzinfo=UTC) if time.tzinfo is None else time.astimezone(UTC)


def _times(rows: _Rows, column: str) -> tuple[list[float], datetime | None]:
    """The times of ``column`` as seconds from the first row's time (timestamps) or as written
    (offsets, >= 0), checked sorted; and the UTC time of offset 0 for timestamps."""
    offsets: list[float] = []
    stamps: list[datetime] = []
    first_kind, first_line = "", 0
    for line, row in rows.data:
        text = rows.cell(row, column)
        if not text:
            rows.error(line, f"{column}: missing; {_TIME_HINT}")
        seconds = _seconds(text)
        stamp = _timestamp(text) if seconds is None else None
        if seconds is None and stamp is None:
            rows.error(line, f"{column}: '{text}' is not a time; {_TIME_HINT}")
        kind = "an offset" if seconds is not None else "a timestamp"
        if not first_kind:
            first_kind, first_line = kind, line
        elif kind != first_kind:
            rows.error(line, f"{column}: '{text}' is {kind}, but line {first_line} is "
                             f"{first_kind}; write every time the same way")
        if seconds is not None:
            if seconds < 0:
                rows.error(line, f"{column}: '{text}' must be 0 or more")
            offsets.append(seconds)
        else:
            assert stamp is not None
            stamps.append(stamp)
    origin = stamps[0] if stamps else None
    if origin is not None:
        offsets = [(stamp - origin).total_seconds() for stamp in stamps]
    for (line, row), (above, row_above), before, now in zip(
        rows.data[1:], rows.data, offsets, offsets[1:], strict=False
    ):
        if now < before:
            rows.error(line, f"{column}: '{rows.cell(row, column)}' comes before line {above}'s "
                             f"'{rows.cell(row_above, column)}'; sort the rows by {column}")
    return offsets, origin


def _shown(path: str | Path, shown: str | None) -> tuple[Path, str]:
    return Path(path).expanduser(), shown if shown is not None else str(path)


def read_job_trace(path: str | Path, *, classes: Sequence[str] | None = None,
                   field: str = "workload.trace", shown: str | None = None) -> JobTrace:
    """The jobs of the CSV trace at ``path`` (format: the module's docstring).

    ``classes``, if given, are the job classes a row's ``class`` must name (a scenario with
    ``[[workload.classes]]``); without them the class is free text. Errors are SimError, one
    line naming ``field``, the file (``shown``, default ``path``) and the line."""
    file, shown = _shown(path, shown)
    rows = _Rows(file, shown, field, "jobs", JOB_COLUMNS, _JOB_REQUIRED)
    enqueued_at, origin = _times(rows, "enqueued_at")
    durations: list[float] = []
    items: list[int] = []
    names: list[str] = []
    for line, row in rows.data:
        text = rows.cell(row, "duration")
        if not text:
            rows.error(line, "duration: missing; write seconds or a duration such as '10m'")
        seconds = _seconds(text)
        if seconds is None:
            rows.error(line, f"duration: '{text}' is not a duration; write seconds or e.g. "
                             "'25s', '10m'")
        assert seconds is not None
        if seconds <= 0:
            rows.error(line, f"duration: '{text}' must be more than 0")
        durations.append(seconds)
        text = rows.cell(row, "items")
        count = 0
        if text:
            try:
                number = float(text)
            except ValueError:
                number = math.nan
            if not (math.isfinite(number) and number.is_integer() and number >= 1):
                rows.error(line, f"items: '{text}' must be a whole number >= 1 (or empty)")
            count = int(number)
        items.append(count)
        name = rows.cell(row, "class")
        if classes is not None and name not in classes:
            if not name:
                rows.error(line, f"class: missing; this scenario has job classes "
                                 f"{', '.join(classes)}: name one")
            hint = did_you_mean(name, classes, "classes are", sep=" ", always=True)
            rows.error(line, f"class: '{name}' is not a job class of the scenario; {hint}")
        names.append(name)
    lines = [line for line, _ in rows.data]
    logger.debug("read %d jobs from %s", len(lines), file)
    return JobTrace(np.asarray(enqueued_at, dtype=np.float64), np.asarray(durations), items,
                    names, str(file), origin, np.asarray(lines))


def load_deploy_trace(path: str | Path, *, field: str = "deploys.trace",
                      shown: str | None = None) -> DeployTrace:
    """The deploys of the CSV trace at ``path`` with their labels and origin (format: the
    module's docstring); errors as ``read_job_trace``'s. A time listed twice is an error."""
    file, shown = _shown(path, shown)
    rows = _Rows(file, shown, field, "deploys", DEPLOY_COLUMNS, _DEPLOY_REQUIRED)
    times, origin = _times(rows, "at")
    for (line, row), (above, _), before, now in zip(
        rows.data[1:], rows.data, times, times[1:], strict=False
    ):
        if now == before:
            rows.error(line, f"at: '{rows.cell(row, 'at')}' is the time of line {above} too; "
                             "list each deploy once")
    labels = tuple(rows.cell(row, "label") for _, row in rows.data)
    logger.debug("read %d deploys from %s", len(times), file)
    return DeployTrace(tuple(times), labels, str(file), origin)


def read_deploy_trace(path: str | Path, *, field: str = "deploys.trace") -> np.ndarray:
    """The deploy times of the CSV trace at ``path``: sorted float64 seconds (from the first
    time, if the file holds timestamps). ``load_deploy_trace`` gives the labels and origin
    too."""
    return load_deploy_trace(path, field=field).array()


# -- writing -----------------------------------------------------------------------------------


def _time_text(seconds: float, origin: datetime | None) -> str:
    if origin is None:
        return _number_text(seconds)
    return (origin + timedelta(seconds=seconds)).isoformat()


def _number_text(value: float) -> str:
    """``value`` in the shortest text that reads back to the same float."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _write(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> Path:
    file = Path(path).expanduser()
    with file.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return file


def write_job_trace(
    path: str | Path,
    enqueued_at: Sequence[float] | np.ndarray,
    duration: Sequence[float] | np.ndarray,
    *,
    items: Sequence[int] | np.ndarray | None = None,
    classes: Sequence[str] | np.ndarray | None = None,
    origin: datetime | None = None,
) -> Path:
    """Write jobs as a CSV trace that ``read_job_trace`` reads back: ``enqueued_at`` (seconds,
    sorted) and ``duration`` (seconds > 0), with ``items`` (0 = leave empty) and ``classes``
    columns when given. With ``origin`` the times are written as ISO-8601 timestamps
    (``origin`` plus the offset, to the microsecond); without it as exact seconds. The values
    are checked as a ``JobTrace``'s before anything is written. Returns the path."""
    n = len(enqueued_at)
    trace = JobTrace(np.asarray(enqueued_at, dtype=np.float64), np.asarray(duration),
                     np.zeros(n) if items is None else items,
                     [""] * n if classes is None else classes, origin=origin)
    header = ["enqueued_at", "duration"]
    header += ["class"] if classes is not None else []
    header += ["items"] if items is not None else []
    out = []
    for i in range(n):
        row = [_time_text(trace.enqueued_at[i], trace.origin), _number_text(trace.duration[i])]
        if classes is not None:
            row.append(str(trace.classes[i]))
        if items is not None:
            row.append(str(int(trace.items[i])) if trace.items[i] else "")
        out.append(row)
    return _write(path, header, out)


def write_deploy_trace(
    path: str | Path,
    times: Sequence[float] | np.ndarray,
    *,
    labels: Sequence[str] | None = None,
    origin: datetime | None = None,
) -> Path:
    """Write deploy ``times`` (seconds, sorted, each once) as a CSV trace that
    ``read_deploy_trace`` reads back, with a ``label`` column when ``labels`` are given and
    ISO-8601 timestamps when ``origin`` is (as ``write_job_trace``). Returns the path."""
    trace = DeployTrace(tuple(float(t) for t in times), tuple(labels or ()), origin=origin)
    header = ["at", "label"] if labels is not None else ["at"]
    out = []
    for time, label in zip(trace.times, trace.labels, strict=True):
        row = [_time_text(time, trace.origin)]
        out.append([*row, label] if labels is not None else row)
    return _write(path, header, out)
