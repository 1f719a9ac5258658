"""Which keys of a scenario's tables apply to which choice: the deploy ``schedule``, the
workload's ``arrivals``, a length's ``kind``. A trace of jobs gives each job's length, so with
``arrivals = "trace"`` the length laws and class weights do not apply either.

A key that does not apply to the choice made (``deploys.every`` with Poisson deploys) would
change nothing, so the reader refuses it and says which key does apply. ``with_values`` drops
the keys it wrote back itself when a changed choice makes them stale (``prune``), so that
setting ``deploys.schedule`` alone switches the schedule.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from ..errors import SimError

__all__ = [
    "ARRIVAL_KEYS",
    "SCHEDULE_KEYS",
    "TRACE_UNUSED",
    "check_applies",
    "check_length_applies",
    "check_trace_applies",
    "length_keys",
    "prune",
]

#: The keys of ``[deploys]`` each schedule uses (``schedule`` itself aside).
SCHEDULE_KEYS: Mapping[str, tuple[str, ...]] = {
    "none": (),
    "periodic": ("every", "phase", "batch_size"),
    "poisson": ("rate", "batch_size"),
    "business-hours": ("rate", "days", "hours", "batch_size"),
    "times": ("times", "batch_size"),
    "trace": ("trace", "batch_size"),
}

#: The keys of ``[workload]`` each kind of arrivals uses, among those that depend on it.
ARRIVAL_KEYS: Mapping[str, tuple[str, ...]] = {
    "poisson": ("rate",),
    "backlog": ("count",),
    "trace": ("trace",),
}

#: The keys of ``[workload]`` whose use depends on the arrivals.
_ARRIVAL_DEPENDENT = ("rate", "count", "trace")

#: The keys of ``[workload]`` and its classes that a trace of jobs makes meaningless.
TRACE_UNUSED = ("length", "weight")

#: What to set instead, per choice: the key that carries it, with an example value.
_INSTEAD: Mapping[tuple[str, str], str] = {
    ("deploys", "periodic"): "deploys.every (e.g. 30m)",
    ("deploys", "poisson"): "deploys.rate (e.g. 2/h)",
    ("deploys", "business-hours"): "deploys.rate (e.g. 2/h)",
    ("deploys", "times"): 'deploys.times (e.g. ["9h", "33h"])',
    ("deploys", "trace"): 'deploys.trace (e.g. "deploys.csv")',
    ("workload", "poisson"): "workload.rate (e.g. 300/h)",
    ("workload", "backlog"): "workload.count (e.g. 1000)",
    ("workload", "trace"): 'workload.trace (e.g. "jobs.csv")',
}

_EMPIRICAL_KEYS = ("file", "column", "durations", "source")


def _quoted(words: tuple[str, ...]) -> str:
    return " or ".join(f'"{w}"' for w in words)


def _not_applying(path: str, key: str, choice_key: str, choice: str, owners: tuple[str, ...],
                  noun: str, instead: str | None) -> SimError:
    """The error for ``path.key``, which applies to ``choice_key = owners`` only."""
    if choice == "none":
        what = f"this scenario has no {noun} ({choice_key} = \"none\")"
    else:
        what = f"this scenario's {noun} are {choice}"
    fix = f"set {instead}, or set" if instead else "set"
    return SimError(
        f"{path}.{key}: applies to {choice_key} = {_quoted(owners)}; {what}: "
        f"{fix} {path}.{choice_key} = \"{owners[0]}\" too"
    )


def check_applies(table: Mapping[str, Any], path: str) -> None:
    """Raise SimError if ``table`` (``deploys`` or ``workload``, as read from a file) holds a
    key that its ``schedule`` or ``arrivals`` does not use; the error names the key that
    does."""
    if path == "deploys":
        choice_key, by_choice, dependent, noun = "schedule", SCHEDULE_KEYS, None, "deploys"
    else:
        choice_key, by_choice, dependent, noun = "arrivals", ARRIVAL_KEYS, _ARRIVAL_DEPENDENT, \
            "arrivals"
    choice = table.get(choice_key)
    if choice not in by_choice:
        return  # the reader names a bad choice itself
    known = {key for keys in by_choice.values() for key in keys}
    for key in table:
        if key == choice_key or key not in known or key in by_choice[choice]:
            continue
        if dependent is not None and key not in dependent:
            continue
        owners = tuple(c for c, keys in by_choice.items() if key in keys)
        raise _not_applying(path, str(key), choice_key, str(choice), owners, noun,
                            _INSTEAD.get((path, str(choice))))


def check_trace_applies(table: Mapping[str, Any], path: str) -> None:
    """Raise SimError if ``table`` (``workload`` with ``arrivals = "trace"``, or one of its
    ``[[workload.classes]]`` entries at ``path``) holds a length law or a weight: the trace
    gives each job's length and class, so they would change nothing."""
    for key in TRACE_UNUSED:
        if key in table:
            raise SimError(
                f"{path}.{key}: does not apply to workload.arrivals = \"trace\" (the trace gives "
                f"each job's duration and class): remove it, or set workload.arrivals = "
                f"\"poisson\" or \"backlog\""
            )


def length_keys(kind: str, params: Mapping[str, Mapping[str, str]]) -> tuple[str, ...]:
    """The keys a length table of ``kind`` may hold (``kind`` included)."""
    if kind == "empirical":
        return ("kind", *_EMPIRICAL_KEYS)
    return ("kind", *params.get(kind, {}))


def check_length_applies(table: Mapping[str, Any], path: str, kind: str,
                         params: Mapping[str, Mapping[str, str]]) -> None:
    """Raise SimError if the length table at ``path`` holds a parameter of another kind than
    its own (``median`` on an exponential length); the error names the parameters of
    ``kind``. Keys of no kind at all are left to the reader's unknown-key check."""
    allowed = length_keys(kind, params)
    for key in table:
        if key in allowed:
            continue
        owners = tuple(k for k in (*params, "empirical") if key in length_keys(k, params))
        if not owners:
            continue
        own = [name for name, spec in params.get(kind, {}).items() if not spec.endswith("?")]
        instead = " and ".join(f"{path}.{name}" for name in own) or f"{path}.durations or .file"
        raise SimError(
            f"{path}.{key}: applies to kind = {_quoted(owners)}; this length is {kind}: "
            f"set {instead}, or set {path}.kind = \"{owners[0]}\" too"
        )


def prune(table: MutableMapping[str, Any], path: str, keep: set[str],
          params: Mapping[str, Mapping[str, str]]) -> None:
    """Drop from ``table`` (``deploys``, ``workload`` or a length table, as
    ``scenario_to_dict`` wrote it) the keys its choice does not use, except those in
    ``keep`` (set by the caller, who must hear if they do not apply). A workload of
    ``arrivals = "trace"`` loses its inline length too, and a class entry (``path`` "class",
    given only for a trace's classes) its length and weight."""
    if path == "class":
        for key in [k for k in TRACE_UNUSED if k in table and k not in keep]:
            del table[key]
        return
    if path == "workload" and table.get("arrivals") == "trace" and "length" not in keep:
        table.pop("length", None)
    if path == "deploys":
        used = SCHEDULE_KEYS.get(table.get("schedule"), None)
        candidates = {key for keys in SCHEDULE_KEYS.values() for key in keys}
    elif path == "workload":
        used = ARRIVAL_KEYS.get(table.get("arrivals"), None)
        candidates = set(_ARRIVAL_DEPENDENT)
    else:
        kind = table.get("kind")
        used = length_keys(kind, params) if isinstance(kind, str) else None
        candidates = {key for k in (*params, "empirical") for key in length_keys(k, params)}
    if used is None:
        return
    for key in [k for k in table if k in candidates and k not in used and k not in keep]:
        del table[key]
