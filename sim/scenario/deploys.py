"""What stops workers: deploys, the platform's own restarts, and crashes.

Time 0 of a simulation is Monday 00:00 local time, so business-hours deploys land on weekdays
and working hours. Every function takes a seeded ``numpy.random.Generator`` and returns sorted
float64 seconds in [0, horizon).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from ..durations import DAY
from ..errors import SimError
from .checks import nonnegative, positive
from .traces import DeployTrace
from .workloads import poisson_times

__all__ = [
    "DAILY_RESTART_JITTER",
    "DAILY_RESTART_PERIOD",
    "DAY",
    "PLATFORMS",
    "PRESETS",
    "SCHEDULES",
    "WEEK",
    "Crashes",
    "Deploys",
    "Platform",
    "crash_times",
    "daily_restart_times",
    "deploy_times",
    "platform_preset",
]

WEEK = 7 * DAY

#: The deploy schedules a scenario can name.
SCHEDULES = ("none", "periodic", "poisson", "business-hours", "times", "trace")

#: The platforms with presets (see ``PRESETS``).
PLATFORMS = ("heroku", "kubernetes", "ecs", "cloud-run", "fly")

#: Heroku cycles each dyno every 24 h plus up to 216 random minutes (docs/semantics.md, platforms).
DAILY_RESTART_PERIOD = DAY
DAILY_RESTART_JITTER = 216 * 60.0


@dataclass(frozen=True)
class Deploys:
    """When deploys happen, and how they roll through the fleet.

    ``schedule`` is one of:

    - ``none``: no deploys;
    - ``periodic``: every ``every`` seconds, the first at ``phase`` (None: uniform in
      [0, every), drawn from the generator);
    - ``poisson``: a Poisson stream of ``rate`` deploys per second;
    - ``business-hours``: a Poisson stream of ``rate`` per second inside working hours
      ``hours`` (local, start and end) of working ``days`` (0 = Monday), none outside;
    - ``times``: exactly at ``times`` (seconds since Monday 00:00);
    - ``trace``: exactly at the times of ``trace``, a ``DeployTrace`` read from a CSV file
      (``deploysim.sim.scenario.traces``), the same in every replication.

    ``batch_size`` makes a rolling deploy: that many workers at a time, each batch waiting for
    the previous one to drain; None stops all workers at once. Fields a schedule does not use
    are ignored here; a scenario file may not hold them (the reader names the key the schedule
    does use, see ``applies``) and ``scenario_to_dict`` does not write them.
    """

    schedule: Literal["none", "periodic", "poisson", "business-hours", "times", "trace"]
    every: float | None = None
    rate: float | None = None
    days: tuple[int, ...] = (0, 1, 2, 3, 4)
    hours: tuple[float, float] = (9.0, 17.0)
    times: tuple[float, ...] = ()
    batch_size: int | None = None
    phase: float | None = None
    trace: DeployTrace | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "days", tuple(self.days))
        object.__setattr__(self, "hours", tuple(self.hours))
        object.__setattr__(self, "times", tuple(self.times))
        self.validate(vars(self), "Deploys")

    @staticmethod
    def validate(values: Mapping[str, Any], where: str) -> None:
        """Raise SimError naming ``where.<field>`` unless ``values`` make valid deploys."""
        schedule = values["schedule"]
        if schedule not in SCHEDULES:
            raise SimError(
                f"{where}.schedule: must be one of {', '.join(SCHEDULES)}, got {schedule!r}"
            )
        every, rate, phase = values.get("every"), values.get("rate"), values.get("phase")
        if every is not None:
            positive(every, f"{where}.every")
        if rate is not None:
            positive(rate, f"{where}.rate")
        if phase is not None:
            nonnegative(phase, f"{where}.phase")
        if schedule == "periodic" and every is None:
            raise SimError(f"{where}.every: schedule 'periodic' needs a period, e.g. '1h'")
        if schedule in ("poisson", "business-hours") and rate is None:
            raise SimError(f"{where}.rate: schedule '{schedule}' needs a rate, e.g. '40/d'")
        trace = values.get("trace")
        if schedule == "trace" and trace is None:
            raise SimError(
                f"{where}.trace: schedule 'trace' needs a CSV of deploy times, e.g. 'deploys.csv'"
            )
        if trace is not None and not isinstance(trace, DeployTrace):
            raise SimError(f"{where}.trace: must be a DeployTrace, got {trace!r}")
        days = values.get("days", (0, 1, 2, 3, 4))
        if not days:
            raise SimError(f"{where}.days: needs at least one day (0 = Monday ... 6 = Sunday)")
        for day in days:
            if isinstance(day, bool) or not isinstance(day, int) or not 0 <= day <= 6:
                raise SimError(f"{where}.days: {day!r} is not a day; use 0 = Monday ... 6 = Sunday")
        if len(set(days)) != len(days):
            raise SimError(f"{where}.days: lists a day twice: {list(days)}")
        hours = values.get("hours", (9.0, 17.0))
        if len(hours) != 2:
            raise SimError(f"{where}.hours: must be [start, end], e.g. [9, 17], got {hours!r}")
        start = nonnegative(hours[0], f"{where}.hours")
        end = nonnegative(hours[1], f"{where}.hours")
        if not start < end <= 24:
            raise SimError(
                f"{where}.hours: must be [start, end] with 0 <= start < end <= 24, "
                f"got {list(hours)}"
            )
        for i, time in enumerate(values.get("times", ())):
            nonnegative(time, f"{where}.times[{i}]")
        batch_size = values.get("batch_size")
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
        ):
            raise SimError(
                f"{where}.batch_size: must be an integer >= 1 (or absent for all at once), "
                f"got {batch_size!r}"
            )

    def in_window(self, times: np.ndarray) -> np.ndarray:
        """Which ``times`` fall inside working hours of working days (bool array)."""
        times = np.asarray(times, dtype=np.float64)
        weekday = np.floor_divide(times, DAY).astype(np.int64) % 7
        hour = np.mod(times, DAY) / 3600.0
        start, end = self.hours
        return np.isin(weekday, self.days) & (hour >= start) & (hour < end)


def deploy_times(deploys: Deploys, rng: np.random.Generator, horizon: float) -> np.ndarray:
    """Sorted deploy times in [0, horizon) (float64 seconds); ``rng`` is used only by the
    schedules that draw (periodic without a phase, poisson, business-hours)."""
    schedule = deploys.schedule
    if schedule == "periodic":
        assert deploys.every is not None
        phase = deploys.phase if deploys.phase is not None else rng.uniform(0, deploys.every)
        count = max(0, math.ceil((horizon - phase) / deploys.every))
        times = phase + deploys.every * np.arange(count, dtype=np.float64)
        return times[times < horizon]
    if schedule == "poisson":
        assert deploys.rate is not None
        return poisson_times(deploys.rate, rng, horizon)
    if schedule == "business-hours":
        assert deploys.rate is not None
        times = poisson_times(deploys.rate, rng, horizon)
        return times[deploys.in_window(times)]
    if schedule == "times":
        times = np.sort(np.asarray(deploys.times, dtype=np.float64))
        return times[times < horizon]
    if schedule == "trace":
        assert deploys.trace is not None
        times = deploys.trace.array()
        return times[times < horizon]
    return np.empty(0, dtype=np.float64)


@dataclass(frozen=True)
class Platform:
    """Where the workers run: on a stop the platform sends SIGTERM, then SIGKILL after
    ``grace`` seconds. ``daily_restarts`` cycles every worker once a day as Heroku does.
    ``preset`` names the platform the defaults came from; ``platform_preset(name)`` gives a
    platform with its real defaults (see ``PRESETS``), and a scenario file's ``preset`` key
    does the same."""

    grace: float = 30.0
    preset: str | None = None
    daily_restarts: bool = False

    def __post_init__(self) -> None:
        self.validate(vars(self), "Platform")

    @staticmethod
    def validate(values: Mapping[str, Any], where: str) -> None:
        """Raise SimError naming ``where.<field>`` unless ``values`` make a valid platform."""
        nonnegative(values["grace"], f"{where}.grace")
        preset = values.get("preset")
        if preset is not None and preset not in PLATFORMS:
            raise SimError(
                f"{where}.preset: unknown platform {preset!r}; use one of {', '.join(PLATFORMS)}"
            )
        if not isinstance(values.get("daily_restarts", False), bool):
            raise SimError(
                f"{where}.daily_restarts: must be true or false, got {values['daily_restarts']!r}"
            )


#: Platform defaults, from the platform table of docs/semantics.md: grace before SIGKILL is 30 s on
#: Heroku (which also cycles dynos daily), Kubernetes (terminationGracePeriodSeconds) and AWS
#: ECS (stopTimeout), 10 s on Google Cloud Run and 5 s on Fly.io (kill_timeout).
PRESETS: Mapping[str, Platform] = MappingProxyType(
    {
        "heroku": Platform(grace=30.0, preset="heroku", daily_restarts=True),
        "kubernetes": Platform(grace=30.0, preset="kubernetes"),
        "ecs": Platform(grace=30.0, preset="ecs"),
        "cloud-run": Platform(grace=10.0, preset="cloud-run"),
        "fly": Platform(grace=5.0, preset="fly"),
    }
)


def platform_preset(name: str) -> Platform:
    """The platform called ``name`` with its real defaults (a key of ``PRESETS``)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise SimError(
            f"platform.preset: unknown platform {name!r}; use one of {', '.join(PRESETS)}"
        ) from None


def daily_restart_times(
    platform: Platform, rng: np.random.Generator, horizon: float, workers: int
) -> list[np.ndarray]:
    """One sorted array of restart times per worker: the first at a uniform phase in the first
    24 h, then every 24 h plus a uniform 0-216 min; empty arrays when the platform has no daily
    restarts."""
    if not platform.daily_restarts:
        return [np.empty(0, dtype=np.float64) for _ in range(workers)]
    first = rng.uniform(0, DAILY_RESTART_PERIOD, workers)
    count = max(1, math.ceil(horizon / DAILY_RESTART_PERIOD) + 1)
    gaps = DAILY_RESTART_PERIOD + rng.uniform(0, DAILY_RESTART_JITTER, (workers, count - 1))
    times = np.cumsum(np.column_stack([first, gaps]), axis=1)
    return [row[row < horizon] for row in times]


@dataclass(frozen=True)
class Crashes:
    """Crashes (OOM, host failure, SIGKILL with no grace) of each worker, a Poisson stream with
    mean time between failures ``mtbf`` seconds; None means no crashes."""

    mtbf: float | None = None

    def __post_init__(self) -> None:
        self.validate(vars(self), "Crashes")

    @staticmethod
    def validate(values: Mapping[str, Any], where: str) -> None:
        """Raise SimError naming ``where.<field>`` unless ``values`` make valid crashes."""
        if values.get("mtbf") is not None:
            positive(values["mtbf"], f"{where}.mtbf")


def crash_times(
    crashes: Crashes, rng: np.random.Generator, horizon: float, workers: int
) -> list[np.ndarray]:
    """One sorted array of crash times in [0, horizon) per worker."""
    if crashes.mtbf is None:
        return [np.empty(0, dtype=np.float64) for _ in range(workers)]
    return [poisson_times(1 / crashes.mtbf, rng, horizon) for _ in range(workers)]
