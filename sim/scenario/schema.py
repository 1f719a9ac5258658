"""Scenarios: a fleet, a platform, a deploy rhythm, crashes, a workload and the strategies to
compare, read from TOML files and checked field by field.

A scenario file looks like this (durations as "25s", "10m", "4h", "30d"; rates as "40/d")::

    name = "heroku-hourly"
    description = "..."
    seed = 1
    horizon = "7d"
    replications = 3

    [fleet]
    workers = 10
    restart_delay = "0s"

    [platform]
    preset = "heroku"            # grace and daily_restarts default to the platform's own

    [deploys]
    schedule = "periodic"        # none | periodic | poisson | business-hours | times
    every = "1h"

    [crashes]
    mtbf = "30d"

    [workload]
    arrivals = "poisson"         # or "backlog" with count = N
    rate = "600/h"
    length = { kind = "lognormal", median = "30s", sigma = 1.0 }
    item_time = "1s"
    hang_probability = 0.0
    # or several [[workload.classes]] with name, weight, length, item_time, hang_probability

    [strategies.sidekiq]         # passed through raw to the strategy
    timeout = "25s"

Unknown keys (outside ``strategies``) are errors that suggest the nearest valid key.
"""

from __future__ import annotations

import difflib
import logging
import math
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..durations import format_duration, format_rate, parse_duration, parse_rate
from ..errors import SimError
from .deploys import PLATFORMS, PRESETS, SCHEDULES, Crashes, Deploys, Platform
from .workloads import (
    LENGTH_KINDS,
    Empirical,
    JobClass,
    LengthDist,
    Workload,
    load_empirical,
)

__all__ = [
    "BUNDLED_DIR",
    "Fleet",
    "FrozenTable",
    "Scenario",
    "bundled_scenarios",
    "load_scenario",
    "parse_assignments",
    "scenario_from_dict",
    "scenario_to_dict",
    "with_overrides",
    "with_values",
]

logger = logging.getLogger(__name__)

#: Where the bundled scenario files live (package data).
BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"

#: Name of the single job class of a workload written with inline length keys.
DEFAULT_CLASS = "default"

_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: Parameters of each length law: name -> "duration" or "number"; a trailing "?" = optional.
_LENGTH_PARAMS: dict[str, dict[str, str]] = {
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
    "deploys": ("schedule", "every", "rate", "days", "hours", "times", "batch_size", "phase"),
    "crashes": ("mtbf",),
    "workload": ("arrivals", "rate", "count", "classes", "length", "item_time", "hang_probability"),
    "class": ("name", "weight", "length", "item_time", "hang_probability"),
    "empirical": ("kind", "file", "column", "durations", "source"),
}


# -- values ----------------------------------------------------------------------------------


class FrozenTable(Mapping[str, Any]):
    """A read-only, hashable, picklable table: nested tables are FrozenTables, arrays are
    tuples. Strategy parameters are handed to the strategy code in this form."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        items = dict(data or {}).items()
        object.__setattr__(self, "_data", {str(k): _freeze(v) for k, v in items})

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self.items()) == dict(other.items())
        return NotImplemented

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("FrozenTable is read-only")

    def __repr__(self) -> str:
        return f"FrozenTable({self._data!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenTable, (self._data,))

    def to_dict(self) -> dict[str, Any]:
        """A plain, mutable copy (tables as dicts, arrays as lists)."""
        return _thaw(self)


def _freeze(value: Any) -> Any:
    if isinstance(value, FrozenTable):
        return value
    if isinstance(value, Mapping):
        return FrozenTable(value)
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class Fleet:
    """The workers that run jobs: how many, and how long one takes to come back after it
    stops (boot time of the new release)."""

    workers: int = 10
    restart_delay: float = 0.0

    def __post_init__(self) -> None:
        self.validate(vars(self), "Fleet")

    @staticmethod
    def validate(values: Mapping[str, Any], where: str) -> None:
        """Raise SimError naming ``where.<field>`` unless ``values`` make a valid fleet."""
        workers = values["workers"]
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise SimError(f"{where}.workers: must be an integer >= 1, got {workers!r}")
        delay = values["restart_delay"]
        if (
            isinstance(delay, bool)
            or not isinstance(delay, int | float)
            or not math.isfinite(delay)
            or delay < 0
        ):
            raise SimError(f"{where}.restart_delay: must be a duration >= 0, got {delay!r}")


@dataclass(frozen=True)
class Scenario:
    """Everything one simulation run needs. ``strategies`` maps a strategy name to its raw
    parameter table (a FrozenTable), checked later by the strategy code."""

    name: str
    description: str
    seed: int
    horizon: float
    replications: int
    fleet: Fleet
    platform: Platform
    deploys: Deploys
    crashes: Crashes
    workload: Workload
    strategies: Mapping[str, Mapping[str, Any]] = field(default_factory=FrozenTable)

    def __post_init__(self) -> None:
        self.validate(vars(self), "Scenario")
        for name, kind in (
            ("fleet", Fleet),
            ("platform", Platform),
            ("deploys", Deploys),
            ("crashes", Crashes),
            ("workload", Workload),
        ):
            if not isinstance(getattr(self, name), kind):
                raise SimError(
                    f"Scenario.{name}: must be a {kind.__name__}, got {getattr(self, name)!r}"
                )
        strategies = self.strategies
        if not isinstance(strategies, Mapping):
            raise SimError(f"Scenario.strategies: must be a table, got {strategies!r}")
        for key, table in strategies.items():
            if not isinstance(table, Mapping):
                raise SimError(f"Scenario.strategies.{key}: must be a table, got {table!r}")
        object.__setattr__(self, "strategies", _freeze(strategies))

    @staticmethod
    def validate(values: Mapping[str, Any], where: str) -> None:
        """Raise SimError naming the field unless the top-level ``values`` are valid."""
        prefix = f"{where}." if where else ""
        name = values["name"]
        if not isinstance(name, str) or not name.strip():
            raise SimError(f"{prefix}name: must be a non-empty string, got {name!r}")
        if not isinstance(values["description"], str):
            raise SimError(f"{prefix}description: must be a string, got {values['description']!r}")
        seed = values["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise SimError(f"{prefix}seed: must be an integer >= 0, got {seed!r}")
        horizon = values["horizon"]
        if (
            isinstance(horizon, bool)
            or not isinstance(horizon, int | float)
            or not math.isfinite(horizon)
            or horizon <= 0
        ):
            raise SimError(f"{prefix}horizon: must be a duration > 0, e.g. '7d', got {horizon!r}")
        replications = values["replications"]
        if isinstance(replications, bool) or not isinstance(replications, int) or replications < 1:
            raise SimError(f"{prefix}replications: must be an integer >= 1, got {replications!r}")


# -- reading ---------------------------------------------------------------------------------

_MISSING: Any = object()


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _as_table(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SimError(f"{path}: must be a table, got {value!r}")
    return value


def _check_keys(table: Mapping[str, Any], path: str, allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    for key in table:
        if key in allowed:
            continue
        close = difflib.get_close_matches(str(key), allowed, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"valid keys are {', '.join(allowed)}"
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


def _rate(table: Mapping[str, Any], key: str, path: str, default: Any, hint: str = "") -> Any:
    value = _value(table, key, path, default, hint or "give a rate, e.g. '40/d'")
    if key not in table:
        return value
    return parse_rate(value, _join(path, key))


def _integer(table: Mapping[str, Any], key: str, path: str, default: Any, minimum: int) -> Any:
    value = _value(table, key, path, default, f"give an integer >= {minimum}")
    if key not in table:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SimError(f"{_join(path, key)}: must be an integer >= {minimum}, got {value!r}")
    return value


def _number(table: Mapping[str, Any], key: str, path: str, default: Any, hint: str = "") -> Any:
    value = _value(table, key, path, default, hint or "give a number")
    if key not in table:
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SimError(f"{_join(path, key)}: must be a finite number, got {value!r}")
    return float(value)


def _string(
    table: Mapping[str, Any],
    key: str,
    path: str,
    default: Any,
    choices: tuple[str, ...] | None = None,
) -> Any:
    hint = f"give one of {', '.join(choices)}" if choices else "give a string"
    value = _value(table, key, path, default, hint)
    if key not in table:
        return value
    if not isinstance(value, str):
        raise SimError(f"{_join(path, key)}: must be a string, got {value!r}")
    if choices is not None and value not in choices:
        close = difflib.get_close_matches(value, choices, n=1)
        tip = f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(choices)}"
        raise SimError(f"{_join(path, key)}: unknown value '{value}'; {tip}")
    return value


def _boolean(table: Mapping[str, Any], key: str, path: str, default: Any) -> Any:
    value = _value(table, key, path, default, "give true or false")
    if not isinstance(value, bool):
        raise SimError(f"{_join(path, key)}: must be true or false, got {value!r}")
    return value


def _array(table: Mapping[str, Any], key: str, path: str) -> list[Any]:
    value = table[key]
    if not isinstance(value, list | tuple):
        raise SimError(f"{_join(path, key)}: must be an array, e.g. [1, 2], got {value!r}")
    return list(value)


def _read_fleet(table: Mapping[str, Any]) -> Fleet:
    _check_keys(table, "fleet", _KEYS["fleet"])
    values = {
        "workers": _integer(table, "workers", "fleet", Fleet.workers, 1),
        "restart_delay": _duration(table, "restart_delay", "fleet", Fleet.restart_delay),
    }
    Fleet.validate(values, "fleet")
    return Fleet(**values)


def _read_platform(table: Mapping[str, Any]) -> Platform:
    _check_keys(table, "platform", _KEYS["platform"])
    preset = _string(table, "preset", "platform", None, PLATFORMS)
    base = PRESETS[preset] if preset is not None else Platform()
    values = {
        "grace": _duration(table, "grace", "platform", base.grace),
        "preset": preset,
        "daily_restarts": _boolean(table, "daily_restarts", "platform", base.daily_restarts),
    }
    Platform.validate(values, "platform")
    return Platform(**values)


def _day(value: object, path: str) -> int:
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


def _read_deploys(table: Mapping[str, Any]) -> Deploys:
    path = "deploys"
    _check_keys(table, path, _KEYS[path])
    values: dict[str, Any] = {
        "schedule": _string(table, "schedule", path, _MISSING, SCHEDULES),
        "every": _duration(table, "every", path, None),
        "rate": _rate(table, "rate", path, None),
        "batch_size": _integer(table, "batch_size", path, None, 1),
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
    Deploys.validate(values, path)
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
    kinds = tuple(LENGTH_KINDS)
    kind = _string(table, "kind", path, _MISSING, kinds)
    if kind == "empirical":
        return _read_empirical(table, path, base_dir)
    params = _LENGTH_PARAMS[kind]
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
        file = _string(table, "file", path, _MISSING)
        column = _string(table, "column", path, None)
        if "source" in table:
            raise SimError(f"{path}.source: only for inline durations; the file is the source")
        file_path = Path(file).expanduser()
        if not file_path.is_absolute():
            file_path = (base_dir or Path.cwd()) / file_path
        return load_empirical(file_path.resolve(), column, _join(path, "file"))
    if "column" in table:
        raise SimError(f"{path}.column: only with 'file'; inline durations have no columns")
    durations = tuple(
        parse_duration(d, f"{path}.durations[{i}]")
        for i, d in enumerate(_array(table, "durations", path))
    )
    if not durations:
        raise SimError(f"{path}.durations: needs at least one duration, e.g. ['30s', '2m']")
    source = _string(table, "source", path, "inline")
    return Empirical(durations, source=source)


def _read_class(
    table: Mapping[str, Any], path: str, base_dir: Path | None, name: str | None
) -> JobClass:
    if name is None:
        name = _string(table, "name", path, _MISSING)
        if not name:
            raise SimError(f"{path}.name: must be a non-empty string")
        weight = _number(table, "weight", path, 1.0)
        if weight <= 0:
            raise SimError(f"{path}.weight: must be > 0, got {weight!r}")
    else:
        weight = 1.0
    hint = "give e.g. {kind='lognormal', median='30s', sigma=1.0}"
    length = _read_length(_value(table, "length", path, _MISSING, hint), f"{path}.length", base_dir)
    item_time = _duration(table, "item_time", path, 1.0)
    if item_time <= 0:
        raise SimError(f"{path}.item_time: must be > 0, e.g. '1s', got {table['item_time']!r}")
    hang = _number(table, "hang_probability", path, 0.0)
    if not 0 <= hang <= 1:
        raise SimError(f"{path}.hang_probability: must be a probability in [0, 1], got {hang!r}")
    return JobClass(name, weight, length, item_time, hang)


def _read_workload(table: Mapping[str, Any], base_dir: Path | None) -> Workload:
    path = "workload"
    _check_keys(table, path, _KEYS[path])
    values: dict[str, Any] = {
        "arrivals": _string(table, "arrivals", path, _MISSING, ("poisson", "backlog")),
        "rate": _rate(table, "rate", path, None),
        "count": _integer(table, "count", path, None, 0),
    }
    Workload.validate(values, path)
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
            classes.append(_read_class(entry, entry_path, base_dir, None))
        names = [c.name for c in classes]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise SimError(f"{path}.classes[{i}].name: '{name}' is used twice; rename one")
    else:
        classes = [_read_class(table, path, base_dir, DEFAULT_CLASS)]
    return Workload(classes=tuple(classes), **values)


def _read_strategies(value: object) -> FrozenTable:
    table = _as_table(value, "strategies")
    for name, params in table.items():
        _as_table(params, f"strategies.{name}")
    return FrozenTable(table)


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
        "name": _string(d, "name", "", source_path.stem if is_file else _MISSING),
        "description": _string(d, "description", "", ""),
        "seed": _integer(d, "seed", "", 0, 0),
        "horizon": _duration(d, "horizon", "", _MISSING, "give the simulated time, e.g. '7d'"),
        "replications": _integer(d, "replications", "", 3, 1),
    }
    Scenario.validate(top, "")
    if "deploys" not in d:
        raise SimError("deploys: missing; add a [deploys] table with schedule = 'periodic' etc.")
    if "workload" not in d:
        raise SimError("workload: missing; add a [workload] table with arrivals and length")
    return Scenario(
        **top,
        fleet=_read_fleet(_as_table(d.get("fleet", {}), "fleet")),
        platform=_read_platform(_as_table(d.get("platform", {}), "platform")),
        deploys=_read_deploys(_as_table(d["deploys"], "deploys")),
        crashes=_read_crashes(_as_table(d.get("crashes", {}), "crashes")),
        workload=_read_workload(_as_table(d["workload"], "workload"), base_dir),
        strategies=_read_strategies(d.get("strategies", {})),
    )


def _bundled_names() -> list[str]:
    return sorted(p.stem for p in BUNDLED_DIR.glob("*.toml"))


def bundled_scenarios() -> dict[str, str]:
    """Bundled scenario names (sorted) with the one-line description each file gives."""
    result = {}
    for name in _bundled_names():
        with (BUNDLED_DIR / f"{name}.toml").open("rb") as handle:
            data = tomllib.load(handle)
        description = str(data.get("description", ""))
        result[name] = description.strip().splitlines()[0] if description.strip() else ""
    return result


def load_scenario(name_or_path: str) -> Scenario:
    """The bundled scenario called ``name_or_path`` (see ``bundled_scenarios``), or the
    scenario in the TOML file at that path."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    looks_like_path = text.endswith(".toml") or "/" in text or "\\" in text or path.is_file()
    if looks_like_path:
        if not path.is_file():
            raise SimError(
                f"scenario: file '{text}' not found; give a .toml path or a bundled name: "
                f"{', '.join(_bundled_names())}"
            )
    else:
        path = BUNDLED_DIR / f"{text}.toml"
        if not path.is_file():
            names = _bundled_names()
            close = difflib.get_close_matches(text, names, n=1)
            tip = f"did you mean '{close[0]}'? " if close else ""
            raise SimError(
                f"scenario: no bundled scenario '{text}'; {tip}bundled: {', '.join(names)}"
            )
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise SimError(f"scenario: {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise SimError(f"scenario: cannot read {path}: {exc.strerror}") from None
    scenario = scenario_from_dict(data, str(path))
    logger.debug("loaded scenario %r from %s", scenario.name, path)
    return scenario


# -- writing -----------------------------------------------------------------------------------


def _length_to_dict(length: LengthDist) -> dict[str, Any]:
    if isinstance(length, Empirical):
        if length.source != "inline" and Path(length.source).is_file():
            table: dict[str, Any] = {"kind": "empirical", "file": length.source}
            if length.column is not None:
                table["column"] = length.column
            return table
        table = {"kind": "empirical", "durations": list(length.durations)}
        if length.source != "inline":
            table["source"] = length.source
        return table
    kind = getattr(length, "kind", None)
    if kind not in _LENGTH_PARAMS or not hasattr(length, "params"):
        raise SimError(f"length: cannot write {length!r} to a scenario file; use a bundled kind")
    table = {"kind": kind}
    for name, value in length.params().items():
        spec = _LENGTH_PARAMS[kind][name]
        table[name] = format_duration(value) if spec.startswith("duration") else value
    return table


def _class_to_dict(job_class: JobClass) -> dict[str, Any]:
    return {
        "name": job_class.name,
        "weight": job_class.weight,
        "length": _length_to_dict(job_class.length),
        "item_time": format_duration(job_class.item_time),
        "hang_probability": job_class.hang_probability,
    }


def scenario_to_dict(s: Scenario) -> dict[str, Any]:
    """The scenario as plain tables, ready for ``tomllib``-compatible writing or JSON:
    durations as strings ("25s"), rates as "40/d"; ``scenario_from_dict`` reads it back to an
    equal Scenario."""
    platform: dict[str, Any] = {}
    base = Platform()
    if s.platform.preset is not None:
        platform["preset"] = s.platform.preset
        base = PRESETS[s.platform.preset]
    if s.platform.grace != base.grace or s.platform.preset is None:
        platform["grace"] = format_duration(s.platform.grace)
    if s.platform.daily_restarts != base.daily_restarts:
        platform["daily_restarts"] = s.platform.daily_restarts

    d = s.deploys
    deploys: dict[str, Any] = {"schedule": d.schedule}
    if d.every is not None:
        deploys["every"] = format_duration(d.every)
    if d.rate is not None:
        deploys["rate"] = format_rate(d.rate)
    if d.schedule == "business-hours" or d.days != Deploys.days:
        deploys["days"] = list(d.days)
    if d.schedule == "business-hours" or d.hours != Deploys.hours:
        deploys["hours"] = list(d.hours)
    if d.schedule == "times" or d.times:
        deploys["times"] = [format_duration(t) for t in d.times]
    if d.batch_size is not None:
        deploys["batch_size"] = d.batch_size
    if d.phase is not None:
        deploys["phase"] = format_duration(d.phase)

    w = s.workload
    workload: dict[str, Any] = {"arrivals": w.arrivals}
    if w.rate is not None:
        workload["rate"] = format_rate(w.rate)
    if w.count is not None:
        workload["count"] = w.count
    only = w.classes[0]
    if len(w.classes) == 1 and only.name == DEFAULT_CLASS and only.weight == 1.0:
        workload["length"] = _length_to_dict(only.length)
        workload["item_time"] = format_duration(only.item_time)
        workload["hang_probability"] = only.hang_probability
    else:
        workload["classes"] = [_class_to_dict(c) for c in w.classes]

    return {
        "name": s.name,
        "description": s.description,
        "seed": s.seed,
        "horizon": format_duration(s.horizon),
        "replications": s.replications,
        "fleet": {
            "workers": s.fleet.workers,
            "restart_delay": format_duration(s.fleet.restart_delay),
        },
        "platform": platform,
        "deploys": deploys,
        "crashes": {} if s.crashes.mtbf is None else {"mtbf": format_duration(s.crashes.mtbf)},
        "workload": workload,
        "strategies": _thaw(s.strategies),
    }


# -- command-line overrides ----------------------------------------------------------------------


def _parse_value(text: str) -> Any:
    """A ``--set`` value: a TOML value if it reads as one ("5", "true", "[1, 2]", "{...}"),
    else the bare string ("1h", "poisson")."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def _child(node: Any, part: str, path: str) -> Any:
    if isinstance(node, list):
        if part.isdigit() and int(part) < len(node):
            return node[int(part)]
        for entry in node:
            if isinstance(entry, dict) and entry.get("name") == part:
                return entry
        raise SimError(f"{path}: no entry '{part}'; give an index or the name of an entry")
    child = node.setdefault(part, {})
    if not isinstance(child, dict | list):
        raise SimError(f"{path}: is {child!r}, not a table; set it as a whole")
    return child


def with_values(s: Scenario, values: Mapping[str, Any], source: str = "") -> Scenario:
    """``s`` with each dotted key of ``values`` set to its value: ``deploys.every`` (3600.0 or
    "1h"), ``fleet.workers``, ``workload.length.median``, ``workload.classes.batch.weight``
    (an entry by name or index) or ``strategies.sidekiq.timeout``. The result is checked like
    a scenario file, and errors name the key."""
    d = scenario_to_dict(s)
    for key, value in values.items():
        parts = [part.strip() for part in str(key).split(".")]
        if not key or any(not part for part in parts):
            raise SimError(f"'{key}': not a dotted scenario key, e.g. deploys.every")
        inline = ("length", "item_time", "hang_probability")
        if (
            parts[:1] == ["workload"]
            and parts[1:2] != []
            and parts[1] in inline
            and ("classes" in d["workload"])
        ):
            rest = ".".join(parts[1:])
            raise SimError(
                f"{key}: this workload has job classes; set workload.classes.<name>.{rest}"
            )
        node: Any = d
        for depth, part in enumerate(parts[:-1]):
            node = _child(node, part, ".".join(parts[: depth + 1]))
        last = parts[-1]
        if isinstance(node, list):
            target = _child(node, last, key)
            node[node.index(target)] = value
        else:
            node[last] = value
        logger.debug("scenario %r: set %s = %r", s.name, key, value)
    return scenario_from_dict(d, source or f"{s.name} with values")


def parse_assignments(assignments: Iterable[str]) -> dict[str, Any]:
    """The ``key=value`` strings of the CLI's ``--set`` as a mapping for ``with_values``:
    values are read as TOML values when they can be ("5", "true", "[1, 2]"), else as bare
    strings ("1h", "poisson")."""
    if isinstance(assignments, str):
        assignments = [assignments]
    values: dict[str, Any] = {}
    for assignment in assignments:
        key, equals, text = assignment.partition("=")
        key = key.strip()
        if not equals or not key or any(not part.strip() for part in key.split(".")):
            raise SimError(
                f"--set '{assignment}': write key=value, e.g. deploys.every=1h or fleet.workers=5"
            )
        values[".".join(part.strip() for part in key.split("."))] = _parse_value(text.strip())
    return values


def with_overrides(s: Scenario, assignments: Iterable[str]) -> Scenario:
    """``s`` with the CLI's ``--set key=value`` strings applied (``parse_assignments``, then
    ``with_values``)."""
    return with_values(s, parse_assignments(assignments), f"{s.name} with --set")
