"""What a shutdown strategy decides, as plain values the simulator and the chaos harness obey.

A job in flight meets two things on a deploy: SIGTERM (the graceful signal), and, if it is still
running when the platform's grace period ends, SIGKILL. A strategy answers three questions:

- how long after SIGTERM the job may go on (``term_wait``; ``inf`` = as long as it takes);
- what happens to it if it is still running when that wait ends (``on_timeout``);
- what happens to it when its process dies by SIGKILL, a crash or an OOM kill (``on_kill``).

The resumable strategy answers the first two with the engine itself (it stops at the next item
boundary); see ``deploysim.strategies.resumable_model``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

Front = Literal["front", "back"]


class StrategyError(ValueError):
    """A strategy's parameters are wrong; the message names the parameter and what is right."""


@dataclass(frozen=True, slots=True)
class Requeue:
    """The job goes back to the queue after ``delay`` seconds, at its ``end``. ``restart`` means
    its progress is gone and it starts over (False: it keeps a saved cursor)."""

    delay: float = 0.0
    end: Front = "back"
    restart: bool = True


@dataclass(frozen=True, slots=True)
class Recover:
    """Sidekiq Pro super_fetch: an orphaned job is pushed back by a process starting up, once the
    dead process's heartbeat (``heartbeat_ttl``) has expired, at most once per ``check_every``."""

    heartbeat_ttl: float = 60.0
    check_every: float = 3600.0


@dataclass(frozen=True, slots=True)
class Fail:
    """The job goes to the failed (dead) queue and is never run again by itself."""

    reason: str = "failed"


@dataclass(frozen=True, slots=True)
class Lose:
    """The job vanishes: no record of it is left in the queue."""

    reason: str = "lost"


Outcome = Requeue | Recover | Fail | Lose
S = TypeVar("S", bound="Strategy")


def duration_param(name: str, value: Any) -> float:
    """Validate a duration parameter: seconds as a number or a string like "25s", "1h"."""
    if isinstance(value, str):
        from deploysim.sim.durations import parse_duration  # the one duration syntax of the project

        try:
            return parse_duration(value, name)
        except ValueError as exc:
            raise StrategyError(str(exc)) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise StrategyError(
            f"{name}: {value!r} is not a duration; write e.g. '25s' or seconds >= 0"
        )
    return float(value)


def choice_param(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """Validate a parameter that takes one of a few words."""
    if value not in choices:
        raise StrategyError(f"{name}: {value!r} is not one of {', '.join(choices)}")
    return str(value)


@dataclass(frozen=True)
class Strategy:
    """Base of every strategy: a frozen value of parameters whose defaults are the real
    system's. ``from_params`` builds one from a scenario's table, rejecting unknown keys."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""

    @classmethod
    def from_params(cls: type[S], params: Mapping[str, Any] | None = None, where: str = "") -> S:
        """Build from a mapping of parameters; errors name ``where.key``."""
        prefix = where or f"strategies.{cls.name}"
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        values: dict[str, Any] = {}
        for key, value in (params or {}).items():
            if key not in fields:
                near = difflib.get_close_matches(key, list(fields), n=1)
                hint = f"; did you mean '{near[0]}'?" if near else f"; known: {', '.join(fields)}"
                raise StrategyError(f"{prefix}.{key}: unknown parameter{hint}")
            values[key] = value
        try:
            return cls(**values)
        except StrategyError as exc:
            raise StrategyError(f"{prefix}.{exc}") from None

    def _set(self, name: str, value: Any) -> None:
        """Store a validated value on the frozen instance (for ``__post_init__``)."""
        object.__setattr__(self, name, value)

    def params(self) -> dict[str, Any]:
        """The parameters as a plain dict (for reports and JSON)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}

    # -- the decisions; subclasses override ---------------------------------------------------

    @property
    def term_wait(self) -> float:
        """Seconds the in-flight job may go on after SIGTERM."""
        return math.inf

    @property
    def on_timeout(self) -> Outcome:
        """What happens to a job still running when ``term_wait`` ends."""
        return Requeue()

    @property
    def on_kill(self) -> Outcome:
        """What happens to a job whose worker is SIGKILLed."""
        return Lose()

    @property
    def run_limit(self) -> float:
        """A job running longer than this (seconds) is killed and fails (Celery)."""
        return math.inf

    @property
    def chunk(self) -> int | None:
        """Items per sub-job when the strategy splits jobs; None runs jobs whole."""
        return None
