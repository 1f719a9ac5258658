"""What a chaos run is asked to do: the flags of ``deploysim chaos`` as one frozen value.

``ChaosConfig.from_args`` reads the command line's values (numbers, or strings such as "2ms"
and "5s"), checks them and raises ``SimError`` with a one-line message naming the flag. The
field defaults of ``ChaosConfig`` are those of ``deploysim chaos``; ``CALIBRATION_DEFAULTS``
holds those of ``deploysim calibrate``, and ``flags()`` writes either back as command-line
values (the ``--help`` text shows them).
``CHAOS_STRATEGIES`` names the strategies a run can put through its workers: the five of
``deploysim.strategies`` with the real systems' defaults, and the variants that change what a
SIGKILL does (reliable fetch, acks_late, exactly-once effects).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from types import MappingProxyType
from typing import Any

from deploysim.strategies import make_strategy
from deploysim.strategies.base import Strategy, StrategyError
from deploysim.strategies.hints import did_you_mean

from ..durations import format_duration, parse_duration
from ..errors import SimError
from .timescale import TimeScale


@dataclass(frozen=True, slots=True)
class Variant:
    """A strategy as a chaos run knows it: a registry strategy, parameters that differ from its
    defaults, and whether a resumable job writes its effects exactly once (through the
    checkpoint store's connection, in the transaction of its cursor)."""

    base: str
    params: Mapping[str, Any]
    summary: str
    exactly_once: bool = False


# The harness's own workers exit the moment they are done and fetch one job at a time: the
# models' costs of real processes (Sidekiq's shutdown poll, Celery's prefetch and slow exit) are
# turned off here, so that these runs check the timing of the rules, not of a process.
_SIDEKIQ_PROCESS = {"shutdown_poll": 0.0}
_CELERY_PROCESS = {"disable_prefetch": True, "exit_time": 0.0}

CHAOS_STRATEGIES: Mapping[str, Variant] = MappingProxyType({
    "sidekiq": Variant("sidekiq", _SIDEKIQ_PROCESS, "basic fetch: SIGKILL loses the job"),
    "sidekiq-reliable": Variant(
        "sidekiq", {**_SIDEKIQ_PROCESS, "fetch": "reliable"},
        "super_fetch: orphans recovered at start-up once the heartbeat expired"),
    "resque": Variant("resque", {}, "QUIT: waits; SIGKILL sends the job to the failed queue"),
    "resque-term": Variant("resque", {"mode": "term"}, "TERM_CHILD: killed after 4 s, failed"),
    "celery": Variant("celery", _CELERY_PROCESS, "acked at start: SIGKILL loses the task"),
    "celery-acks-late": Variant(
        "celery", {**_CELERY_PROCESS, "acks_late": True},
        "acks_late: redelivered after the visibility timeout"),
    "split": Variant("split", _SIDEKIQ_PROCESS, "sub-jobs of 100 items, each a Sidekiq job"),
    "resumable": Variant(
        "resumable", {}, "the engine: cursor, fenced lease; effects at least once"),
    "resumable-exactly-once": Variant(
        "resumable", {}, "the engine, effects committed with the cursor", exactly_once=True),
})
"""Every strategy name ``--strategy`` accepts."""

MAX_WORKERS = 64
"""More worker processes than this would only measure the machine's scheduler."""

MAX_JOBS = 10_000
"""Each job has its own SQLite file of effects; more than this is a file-system benchmark."""


def _whole(value: Any, flag: str, low: int, high: int | None = None) -> int:
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise SimError(f"{flag}: {value!r} is not a whole number") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SimError(f"{flag}: {value!r} is not a whole number")
    if value < low:
        raise SimError(f"{flag}: {value} must be >= {low}")
    if high is not None and value > high:
        raise SimError(f"{flag}: {value} must be <= {high}")
    return value


def _duration(value: Any, flag: str, *, positive: bool = True) -> float:
    seconds = parse_duration(value, flag)
    if positive and seconds <= 0:
        raise SimError(f"{flag}: must be more than 0, e.g. '2ms' or '5s'")
    if math.isinf(seconds):
        raise SimError(f"{flag}: must be finite")
    return seconds


def _strategy_name(value: Any) -> str:
    name = str(value)
    if name not in CHAOS_STRATEGIES:
        hint = did_you_mean(name, CHAOS_STRATEGIES, always=True)
        raise SimError(f"--strategy: '{name}' is unknown; {hint}")
    return name


@dataclass(frozen=True)
class ChaosConfig:
    """One chaos run: ``workers`` worker processes work through ``jobs`` jobs of ``items``
    items of ``item_time`` seconds each, under a deploy every ``deploy_every`` seconds (SIGTERM,
    then SIGKILL after ``grace``) and SIGKILL crashes of random workers ``crash_every`` seconds
    apart on average, for at most ``duration`` seconds. ``deploy_every`` or ``crash_every`` of
    0 turns deploys or crashes off. ``params`` overrides the strategy's parameters, in
    real-world time (they are scaled like its defaults; see ``timescale``).

    The field defaults are the defaults of ``deploysim chaos``, defined here only."""

    strategy: str = "resumable"
    workers: int = 4
    jobs: int = 100
    items: int = 200
    item_time: float = 0.002
    deploy_every: float = 2.0
    grace: float = 0.5
    crash_every: float = 5.0
    duration: float = 30.0
    seed: int = 1
    params: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def from_args(cls, defaults: ChaosConfig | None = None, **values: Any) -> ChaosConfig:
        """Build from command-line values; None or a missing key takes the value of
        ``defaults`` (default: ``ChaosConfig()``, the defaults of ``deploysim chaos``; pass
        ``CALIBRATION_DEFAULTS`` for those of ``deploysim calibrate``). Raises SimError with a
        message naming the flag (``--item-time``) when a value is wrong. ``params`` (a
        mapping) overrides the strategy's parameters."""
        base = cls() if defaults is None else defaults
        unknown = set(values) - set(_SETTINGS) - {"params"}
        if unknown:
            raise SimError(f"unknown chaos setting(s): {', '.join(sorted(unknown))}")
        v = {k: (values[k] if values.get(k) is not None else getattr(base, k)) for k in _SETTINGS}
        params = values.get("params")
        params = dict(base.params) if params is None else params
        if not isinstance(params, Mapping):
            params = dict(params)
        config = cls(
            strategy=_strategy_name(v["strategy"]),
            workers=_whole(v["workers"], "--workers", 1, MAX_WORKERS),
            jobs=_whole(v["jobs"], "--jobs", 1, MAX_JOBS),
            items=_whole(v["items"], "--items", 1),
            item_time=_duration(v["item_time"], "--item-time"),
            deploy_every=_duration(v["deploy_every"], "--deploy-every", positive=False),
            grace=_duration(v["grace"], "--grace"),
            crash_every=_duration(v["crash_every"], "--crash-every", positive=False),
            duration=_duration(v["duration"], "--duration"),
            seed=_whole(v["seed"], "--seed", 0),
            params=tuple(sorted(params.items())),
        )
        config.make_strategy()  # the parameters must make a valid strategy
        return config

    def flags(self) -> dict[str, Any]:
        """The settings as command-line values (durations written "2ms", "5s"; ``params``
        left out), which ``from_args`` reads back to the same settings."""
        out: dict[str, Any] = {}
        for name in _SETTINGS:
            value = getattr(self, name)
            out[name] = format_duration(value) if isinstance(value, float) else value
        return out

    def with_strategy(self, name: str) -> ChaosConfig:
        """The same run with another strategy (``params`` dropped: they belong to the old one)."""
        return replace(self, strategy=_strategy_name(name), params=())

    @property
    def variant(self) -> Variant:
        """The strategy variant named by ``strategy``."""
        return CHAOS_STRATEGIES[self.strategy]

    @property
    def scale(self) -> TimeScale:
        """The time scale of the run (see ``timescale``)."""
        return TimeScale.for_grace(self.grace)

    def make_strategy(self) -> Strategy:
        """The strategy value with the real systems' defaults and ``params``, not yet scaled."""
        # durations written as text ("1m") become seconds, as in a scenario's strategy tables
        from ..scenario.strategy_tables import read_strategy_params

        variant = self.variant
        params = {**variant.params, **dict(self.params)}
        try:
            return make_strategy(variant.base, read_strategy_params(
                variant.base, params, f"--strategy {self.strategy}: params"))
        except StrategyError as exc:
            raise SimError(f"--strategy {self.strategy}: {exc}") from None

    def scaled_strategy(self) -> Strategy:
        """The strategy whose every duration is in the run's compressed time."""
        return self.scale.strategy(self.make_strategy())

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready values, durations in seconds."""
        return {
            "strategy": self.strategy,
            "workers": self.workers,
            "jobs": self.jobs,
            "items": self.items,
            "item_time_s": self.item_time,
            "deploy_every_s": self.deploy_every,
            "grace_s": self.grace,
            "crash_every_s": self.crash_every,
            "duration_s": self.duration,
            "seed": self.seed,
            "params": dict(self.params),
        }

    def describe(self) -> str:
        """One line for a person: the strategy and the load."""
        deploys = (f"deploy every {format_duration(self.deploy_every)}"
                   if self.deploy_every else "no deploys")
        crashes = (f"a crash every {format_duration(self.crash_every)}"
                   if self.crash_every else "no crashes")
        return (f"{self.strategy}: {self.workers} workers, {self.jobs} jobs x {self.items} items "
                f"x {format_duration(self.item_time)}, {deploys} (grace "
                f"{format_duration(self.grace)}), {crashes}, at most "
                f"{format_duration(self.duration)}, seed {self.seed}")


_SETTINGS = tuple(f.name for f in fields(ChaosConfig) if f.name != "params")
"""The settings a command line sets: every field but ``params``."""

CALIBRATION_DEFAULTS = ChaosConfig(
    jobs=150, item_time=0.0005, deploy_every=0.5, grace=0.1, crash_every=0.04, duration=10.0)
"""The defaults of ``deploysim calibrate``: a scenario dense in events (a crash every 40 ms,
a deploy every 500 ms, jobs a little longer than the grace), so that one run of a few seconds
holds over a hundred SIGKILLs and its totals are not at the mercy of a few of them."""
