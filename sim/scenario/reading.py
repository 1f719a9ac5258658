"""Reading a scenario's tables (as ``tomllib`` reads a scenario file) into a ``Scenario``.

The readers turn what people write into values: durations ("25s") into seconds, rates
("40/d") into events per second, day names into numbers, ``"17:30"`` into 17.5, and whole
numbers into floats where a float is meant. They check what they must to read on (a table
is a table, a ``kind`` or ``preset`` is known) and leave the rules of each value to its own
``validate``, called with the table's path so that errors name the key (``deploys.every``).
Unknown keys (outside ``strategies``) are errors that suggest the nearest valid key. Files a
scenario names (empirical lengths, traces) are read from its folder; traces of jobs and of
deploys that both hold timestamps are moved to one origin, the earlier of their first times.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from deploysim.strategies.hints import did_you_mean

from ..durations import parse_duration, parse_rate
from ..errors import SimError
from .applies import check_applies, check_length_applies, check_trace_applies
from .deploys import PLATFORMS, PRESETS, SCHEDULES, Crashes, Deploys, Platform
from .lengths import LENGTH_KINDS, Empirical, LengthDist, load_empirical
from .model import DEFAULT_CLASS, Fleet, FrozenTable, Scenario
from .strategy_tables import read_strategy_params
from .traces import load_deploy_trace, read_job_trace
from .workloads import ARRIVALS, JobClass, Workload

__all__ = ["LENGTH_PARAMS", "RATE_KEYS", "check_rate_units", "scenario_from_dict"]

_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: Parameters of each length law: name -> "duration" or "number"; a trailing "?" = optional.
LENGTH_PARAMS: dict[str, dict[str, str]] = {
    "fixed": {"length": "duration"},
    "exponential": {"mean": "duration"},
    "lognormal": {"median": "duration", "sigma": "number"},
    "pareto": {"alpha": "number", "minimum": "duration", "maximum": "duration?"},
    "weibull": {"shape": "number", "scale": "duration"},
}

_KEYS: dict[str, tuple[str, ...]] = {
    "": (
        "name",
        "description",
        "seed",
        "horizon",
        "replications",
        "fleet",
        "platform",
        "deploys",
        "crashes",
        "workload",
        "strategies",
    ),
    "fleet": ("workers", "restart_delay"),
    "platform": ("preset", "grace", "daily_restarts"),
    "deploys": (
        "schedule", "every", "rate", "days", "hours", "times", "trace", "batch_size", "phase",
    ),
    "crashes": ("mtbf",),
    "workload": (
        "arrivals", "rate", "count", "trace", "classes", "length", "item_time", "hang_probability",
    ),
    "class": ("name", "weight", "length", "item_time", "hang_probability"),
    "empirical": ("kind", "file", "column", "durations", "source"),
}

_MISSING: Any = object()

#: The dotted keys that hold rates.
RATE_KEYS = ("deploys.rate", "workload.rate")


def _unitless_rate(value: object, path: str) -> SimError:
    text = str(value).strip()
    return SimError(
        f"{path}: {text} has no unit; write e.g. \"{text}/h\", \"{text}/min\" or \"{text}/s\" "
        "(events per hour, minute or second)"
    )


def check_rate_units(tables: Mapping[str, Any], prefix: str = "") -> None:
    """Raise SimError if a rate in ``tables`` (a scenario file's tables, or dotted keys and
    values as ``--set`` gives them) is a bare number: text must say per what, "300/h".

    Only text is checked so: numbers a program passes to ``scenario_from_dict`` or
    ``with_values`` are events per second."""
    for key, value in tables.items():
        path = _join(prefix, str(key))
        if isinstance(value, Mapping):
            check_rate_units(value, path)
        elif path in RATE_KEYS and isinstance(value, int | float) and not isinstance(value, bool):
            raise _unitless_rate(value, path)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _as_table(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SimError(f"{path}: must be a table, got {value!r}")
    return value


def _check_keys(table: Mapping[str, Any], path: str, allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    for key in table:
        if key not in allowed:
            hint = did_you_mean(key, allowed, "valid keys are", sep=" ")
            raise SimError(f"{_join(path, str(key))}: unknown key; {hint}")


def _value(table: Mapping[str, Any], key: str, path: str, default: Any, hint: str) -> Any:
    if key in table:
        return table[key]
    if default is _MISSING:
        raise SimError(f"{_join(path, key)}: missing; {hint}")
    return default


def _duration(table: Mapping[str, Any], key: str, path: str, default: Any, hint: str = "") -> Any:
    value = _value(table, key, path, default, hint or "give a duration, e.g. '10m'")
    if key not in table:
        return value
    return parse_duration(value, _join(path, key))


def _rate(table: Mapping[str, Any], key: str, path: str, default: Any) -> Any:
    value = _value(table, key, path, default, "give a rate, e.g. '40/d'")
    if key not in table:
        return value
    if isinstance(value, str) and "/" not in value and " per " not in value:
        parse_rate(value, _join(path, key))  # not a number at all: the reader's own error
        raise _unitless_rate(value, _join(path, key))
    return parse_rate(value, _join(path, key))


def _number(table: Mapping[str, Any], key: str, path: str, default: Any) -> Any:
    """The value at ``key``, a whole number made a float; its rules are its validate's."""
    value = _value(table, key, path, default, "give a number")
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _choice(
    table: Mapping[str, Any], key: str, path: str, default: Any, choices: tuple[str, ...]
) -> Any:
    """A word the reader goes on with (a kind, a preset): one of ``choices``."""
    value = _value(table, key, path, default, f"give one of {', '.join(choices)}")
    if key not in table:
        return value
    if not isinstance(value, str):
        raise SimError(f"{_join(path, key)}: must be a string, got {value!r}")
    if value not in choices:
        hint = did_you_mean(value, choices, "use one of", sep=" ")
        raise SimError(f"{_join(path, key)}: unknown value '{value}'; {hint}")
    return value


def _string(table: Mapping[str, Any], key: str, path: str, default: Any) -> Any:
    value = _value(table, key, path, default, "give a string")
    if key in table and not isinstance(value, str):
        raise SimError(f"{_join(path, key)}: must be a string, got {value!r}")
    return value


def _array(table: Mapping[str, Any], key: str, path: str) -> list[Any]:
    value = table[key]
    if not isinstance(value, list | tuple):
        raise SimError(f"{_join(path, key)}: must be an array, e.g. [1, 2], got {value!r}")
    return list(value)


def _file(table: Mapping[str, Any], key: str, path: str, base_dir: Path | None) -> tuple[Path, str]:
    """The file named at ``key`` (relative to ``base_dir``, the scenario file's folder, or the
    working directory), resolved, with the name as written for errors."""
    written = _string(table, key, path, _MISSING)
    file = Path(written).expanduser()
    if not file.is_absolute():
        file = (base_dir or Path.cwd()) / file
    return file.resolve(), written


def _read_fleet(table: Mapping[str, Any]) -> Fleet:
    _check_keys(table, "fleet", _KEYS["fleet"])
    values = {
        "workers": _value(table, "workers", "fleet", Fleet.workers, ""),
        "restart_delay": _duration(table, "restart_delay", "fleet", Fleet.restart_delay),
    }
    Fleet.validate(values, "fleet")
    return Fleet(**values)


def _read_platform(table: Mapping[str, Any]) -> Platform:
    _check_keys(table, "platform", _KEYS["platform"])
    preset = _choice(table, "preset", "platform", None, PLATFORMS)
    base = PRESETS[preset] if preset is not None else Platform()
    values = {
        "grace": _duration(table, "grace", "platform", base.grace),
        "preset": preset,
        "daily_restarts": _value(table, "daily_restarts", "platform", base.daily_restarts, ""),
    }
    Platform.validate(values, "platform")
    return Platform(**values)


def _day(value: object, path: str) -> int:
    """A day as its number (0 = Monday), from a number or a name ("mon", "Friday"); checked
    here, where the error can name the entry (``deploys.days[1]``)."""
    if isinstance(value, str) and value[:3].lower() in _DAY_NAMES:
        return _DAY_NAMES.index(value[:3].lower())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 6:
        raise SimError(f"{path}: {value!r} is not a day; use 0 = Monday ... 6 = Sunday or 'mon'")
    return value


def _hour(value: object, path: str) -> float:
    if isinstance(value, str) and ":" in value:
        hours, _, minutes = value.partition(":")
        if hours.strip().isdigit() and minutes.strip().isdigit():
            return int(hours) + int(minutes) / 60
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SimError(f"{path}: {value!r} is not an hour; write e.g. 9, 17.5 or '17:30'")
    return float(value)


def _read_deploys(table: Mapping[str, Any], base_dir: Path | None) -> Deploys:
    path = "deploys"
    _check_keys(table, path, _KEYS[path])
    values: dict[str, Any] = {
        "schedule": _choice(table, "schedule", path, _MISSING, SCHEDULES),
        "every": _duration(table, "every", path, None),
        "rate": _rate(table, "rate", path, None),
        "batch_size": _value(table, "batch_size", path, None, ""),
        "phase": _duration(table, "phase", path, None),
    }
    if "days" in table:
        values["days"] = tuple(
            _day(day, f"{path}.days[{i}]") for i, day in enumerate(_array(table, "days", path))
        )
    if "hours" in table:
        values["hours"] = tuple(
            _hour(hour, f"{path}.hours[{i}]") for i, hour in enumerate(_array(table, "hours", path))
        )
    if "times" in table:
        values["times"] = tuple(
            parse_duration(time, f"{path}.times[{i}]")
            for i, time in enumerate(_array(table, "times", path))
        )
    if "trace" in table:
        check_applies(table, path)  # a trace not read needlessly: named if it does not apply
        file, written = _file(table, "trace", path, base_dir)
        values["trace"] = load_deploy_trace(file, field=_join(path, "trace"), shown=written)
    Deploys.validate(values, path)
    check_applies(table, path)  # after the values: a bad value is named as such first
    return Deploys(**values)


def _read_crashes(table: Mapping[str, Any]) -> Crashes:
    _check_keys(table, "crashes", _KEYS["crashes"])
    values = {"mtbf": _duration(table, "mtbf", "crashes", None)}
    Crashes.validate(values, "crashes")
    return Crashes(**values)


def _read_length(value: object, path: str, base_dir: Path | None) -> LengthDist:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return LENGTH_KINDS["fixed"](parse_duration(value, path))
    table = _as_table(value, path)
    kind = _choice(table, "kind", path, _MISSING, tuple(LENGTH_KINDS))
    check_length_applies(table, path, kind, LENGTH_PARAMS)
    if kind == "empirical":
        return _read_empirical(table, path, base_dir)
    params = LENGTH_PARAMS[kind]
    _check_keys(table, path, ("kind", *params))
    required = [name for name, spec in params.items() if not spec.endswith("?")]
    values: dict[str, Any] = {}
    for name, spec in params.items():
        if name not in table:
            if spec.endswith("?"):
                continue
            raise SimError(
                f"{_join(path, name)}: missing; a {kind} length needs {', '.join(required)}"
            )
        if spec.startswith("duration"):
            values[name] = parse_duration(table[name], _join(path, name))
        else:
            values[name] = _number(table, name, path, _MISSING)
    cls = LENGTH_KINDS[kind]
    cls.validate({**{n: None for n in params}, **values}, path)
    return cls(**values)


def _read_empirical(table: Mapping[str, Any], path: str, base_dir: Path | None) -> Empirical:
    _check_keys(table, path, _KEYS["empirical"])
    if ("file" in table) == ("durations" in table):
        raise SimError(
            f"{path}: an empirical length needs exactly one of 'file' (a CSV of durations) "
            "or 'durations' (an array)"
        )
    if "file" in table:
        column = _string(table, "column", path, None)
        if "source" in table:
            raise SimError(f"{path}.source: only for inline durations; the file is the source")
        file_path, _ = _file(table, "file", path, base_dir)
        return load_empirical(file_path, column, _join(path, "file"))
    if "column" in table:
        raise SimError(f"{path}.column: only with 'file'; inline durations have no columns")
    durations = tuple(
        parse_duration(d, f"{path}.durations[{i}]")
        for i, d in enumerate(_array(table, "durations", path))
    )
    Empirical.validate({"durations": durations}, path)
    source = _string(table, "source", path, "inline")
    return Empirical(durations, source=source)


def _read_class(
    table: Mapping[str, Any], path: str, base_dir: Path | None, name: str | None,
    traced: bool = False,
) -> JobClass:
    """The job class at ``path``; of a trace's jobs (``traced``), one without length law or
    weight (the trace gives each job's)."""
    if traced:
        check_trace_applies(table, path)
    if name is None:
        name = _value(table, "name", path, _MISSING, "give a string")
        weight = _number(table, "weight", path, 1.0)
    else:
        weight = 1.0
    hint = "give e.g. {kind='lognormal', median='30s', sigma=1.0}"
    length = None if traced else _read_length(
        _value(table, "length", path, _MISSING, hint), f"{path}.length", base_dir
    )
    values = {
        "name": name,
        "weight": weight,
        "length": length,
        "item_time": _duration(table, "item_time", path, 1.0),
        "hang_probability": _number(table, "hang_probability", path, 0.0),
    }
    JobClass.validate(values, path)
    return JobClass(**values)


def _read_workload(table: Mapping[str, Any], base_dir: Path | None) -> Workload:
    path = "workload"
    _check_keys(table, path, _KEYS[path])
    values: dict[str, Any] = {
        "arrivals": _choice(table, "arrivals", path, _MISSING, ARRIVALS),
        "rate": _rate(table, "rate", path, None),
        "count": _value(table, "count", path, None, ""),
    }
    traced = values["arrivals"] == "trace"
    if not traced or "trace" not in table:
        Workload.validate(values, path)
    check_applies(table, path)
    if "classes" in table:
        inline = [key for key in ("length", "item_time", "hang_probability") if key in table]
        if inline:
            raise SimError(
                f"{path}.{inline[0]}: give either inline length/item_time/hang_probability or "
                "[[workload.classes]] entries, not both"
            )
        entries = _array(table, "classes", path)
        if not entries:
            raise SimError(f"{path}.classes: needs at least one [[workload.classes]] entry")
        classes = []
        for i, entry in enumerate(entries):
            entry_path = f"{path}.classes[{i}]"
            entry = _as_table(entry, entry_path)
            _check_keys(entry, entry_path, _KEYS["class"])
            classes.append(_read_class(entry, entry_path, base_dir, None, traced))
        names = [c.name for c in classes]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise SimError(f"{path}.classes[{i}].name: '{name}' is used twice; rename one")
    else:
        classes = [_read_class(table, path, base_dir, DEFAULT_CLASS, traced)]
    if traced:
        file, written = _file(table, "trace", path, base_dir)
        named = None if "classes" not in table else [c.name for c in classes]
        values["trace"] = read_job_trace(file, classes=named, field=_join(path, "trace"),
                                         shown=written)
    return Workload(classes=tuple(classes), **values)


def _share_origin(deploys: Deploys, workload: Workload) -> tuple[Deploys, Workload]:
    """Both traces counted from one origin, the earlier of their first times, when both hold
    timestamps (so that a job and a deploy of the same moment meet again); else as read."""
    jobs, times = workload.trace, deploys.trace
    if jobs is None or times is None or jobs.origin is None or times.origin is None:
        return deploys, workload
    origin = min(jobs.origin, times.origin)
    return (replace(deploys, trace=times.shifted(origin)),
            replace(workload, trace=jobs.shifted(origin)))


def _read_strategies(value: object) -> FrozenTable:
    Scenario.validate_strategies(value, "strategies")
    assert isinstance(value, Mapping)
    return FrozenTable(
        {name: read_strategy_params(str(name), table) for name, table in value.items()}
    )


def scenario_from_dict(d: Mapping[str, Any], source: str) -> Scenario:
    """A Scenario from the tables of a scenario file (as ``tomllib`` reads them).

    ``source`` names where ``d`` came from; if it is a file path, relative CSV paths are read
    from that file's folder and a missing ``name`` defaults to the file's stem.
    """
    d = _as_table(d, "scenario")
    _check_keys(d, "", _KEYS[""])
    source_path = Path(source)
    is_file = source_path.suffix == ".toml"
    base_dir = source_path.resolve().parent if is_file else None
    top: dict[str, Any] = {
        "name": _value(d, "name", "", source_path.stem if is_file else _MISSING, "give a string"),
        "description": _value(d, "description", "", "", ""),
        "seed": _value(d, "seed", "", 0, ""),
        "horizon": _duration(d, "horizon", "", _MISSING, "give the simulated time, e.g. '7d'"),
        "replications": _value(d, "replications", "", 3, ""),
    }
    Scenario.validate(top, "")
    if "deploys" not in d:
        raise SimError("deploys: missing; add a [deploys] table with schedule = 'periodic' etc.")
    if "workload" not in d:
        raise SimError("workload: missing; add a [workload] table with arrivals and length")
    fleet = _read_fleet(_as_table(d.get("fleet", {}), "fleet"))
    platform = _read_platform(_as_table(d.get("platform", {}), "platform"))
    deploys = _read_deploys(_as_table(d["deploys"], "deploys"), base_dir)
    crashes = _read_crashes(_as_table(d.get("crashes", {}), "crashes"))
    workload = _read_workload(_as_table(d["workload"], "workload"), base_dir)
    deploys, workload = _share_origin(deploys, workload)
    return Scenario(
        **top,
        fleet=fleet,
        platform=platform,
        deploys=deploys,
        crashes=crashes,
        workload=workload,
        strategies=_read_strategies(d.get("strategies", {})),
    )
