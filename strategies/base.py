"""What a shutdown strategy decides, as plain values the simulator and the chaos harness obey.

A job in flight meets two things on a deploy: SIGTERM (the graceful signal), and, if it is still
running when the platform's grace period ends, SIGKILL. A strategy answers three questions:

- how long after SIGTERM the job may go on (``term_wait``; ``inf`` = as long as it takes);
- what happens to it if it is still running when that wait ends (``on_timeout``);
- what happens to it when its process dies by SIGKILL, a crash or an OOM kill (``on_kill``).

Three more describe the process around the job, and their defaults leave them out: how many
messages a process reserves beyond the one in hand (``prefetch``) and what becomes of them when
it exits after SIGTERM (``on_exit_reserved``) or is SIGKILLed (``on_kill_reserved``), and how
long the process takes to exit once it has no job in hand (``exit_time``).

The resumable strategy answers the first two with the engine itself (it stops at the next item
boundary); see ``deploysim.strategies.resumable_model``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

from .hints import did_you_mean

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
    """The job goes to the failed (dead) queue and is never run again by itself. With a
    ``delay`` it stays pending for that many seconds first and only then is recorded failed (RQ:
    a SIGKILLed worker's job stays in StartedJobRegistry until its entry expires and a
    maintenance pass moves it to FailedJobRegistry)."""

    reason: str = "failed"
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class Lose:
    """The job vanishes: no record of it is left in the queue."""

    reason: str = "lost"


@dataclass(frozen=True, slots=True)
class Redeliver:
    """Dramatiq's unacknowledged messages of a dead process: held until ``after`` seconds have
    passed (the process's heartbeat has expired), then put back at ``end`` of the queue, to start
    over, by the first queue maintenance. Each broker command of a live process runs one with
    probability ``chance``: a fetch whenever a process takes a message from the queue, and one
    every ``poll`` seconds from each process that is polling (waiting on an empty queue, or
    working with room in its prefetch). Under a backlog every process is full and sends few
    commands, so the messages wait for the queue to drain."""

    after: float
    chance: float
    poll: float
    end: Front = "back"


Outcome = Requeue | Recover | Redeliver | Fail | Lose
S = TypeVar("S", bound="Strategy")

#: Field metadata: the field is a duration, seconds as a number.
DURATION = "duration"
#: Field metadata: the parameter's name in scenario tables and ``params()``, where it is not the
#: field's own (the field's name is taken by a decision of the same name).
KEY = "key"


def duration_field(default: float | None) -> Any:
    """Declare a duration parameter: seconds as a number (int or float, >= 0, ``inf`` allowed).
    A default of None means the parameter may be left unset (None)."""
    return dataclasses.field(default=default, metadata={DURATION: True})


def keyed_field(default: Any, key: str) -> Any:
    """Declare a parameter that scenario tables and ``params()`` call ``key``."""
    return dataclasses.field(default=default, metadata={KEY: key})


def duration_param(name: str, value: Any) -> float:
    """Validate a duration parameter: seconds as a number >= 0. Text ("25s") is refused: it is
    read where it is written (the scenario file, the command line), not here."""
    if isinstance(value, str):
        raise StrategyError(f"{name}: {value!r} is text; give seconds as a number")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise StrategyError(f"{name}: {value!r} is not a duration; give seconds as a number >= 0")
    return float(value)


def choice_param(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """Validate a parameter that takes one of a few words."""
    if value not in choices:
        raise StrategyError(f"{name}: {value!r} is not one of {', '.join(choices)}")
    return str(value)


def _key(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get(KEY, f.name))


@dataclass(frozen=True)
class Strategy:
    """Base of every strategy: a frozen value of parameters whose defaults are the real
    system's. ``from_params`` builds one from a scenario's table, rejecting unknown keys.

    Parameters declared with ``duration_field`` are checked here, for every strategy: seconds
    as numbers (``duration_params`` names them, so that whoever reads text can parse it)."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if not f.metadata.get(DURATION):
                continue
            value = getattr(self, f.name)
            if value is None and f.default is None:
                continue  # left unset
            self._set(f.name, duration_param(_key(f), value))

    @classmethod
    def param_keys(cls) -> dict[str, str]:
        """Each parameter's name (as in scenario tables and ``params()``) -> its field's name."""
        return {_key(f): f.name for f in dataclasses.fields(cls) if f.init}

    @classmethod
    def duration_params(cls) -> tuple[str, ...]:
        """The names of the parameters that are durations (seconds as numbers)."""
        return tuple(
            _key(f) for f in dataclasses.fields(cls) if f.init and f.metadata.get(DURATION)
        )

    @classmethod
    def from_params(cls: type[S], params: Mapping[str, Any] | None = None, where: str = "") -> S:
        """Build from a mapping of parameters (Python values: durations in seconds); errors
        name ``where.key``."""
        prefix = where or f"strategies.{cls.name}"
        keys = cls.param_keys()
        values: dict[str, Any] = {}
        for key, value in (params or {}).items():
            if key not in keys:
                raise StrategyError(f"{prefix}.{key}: unknown parameter; {did_you_mean(key, keys)}")
            values[keys[key]] = value
        try:
            return cls(**values)
        except StrategyError as exc:
            raise StrategyError(f"{prefix}.{exc}") from None

    def _set(self, name: str, value: Any) -> None:
        """Store a validated value on the frozen instance (for ``__post_init__``)."""
        object.__setattr__(self, name, value)

    def params(self) -> dict[str, Any]:
        """The parameters as a plain dict under their table names (for reports and JSON)."""
        return {_key(f): getattr(self, f.name) for f in dataclasses.fields(self) if f.init}

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

    @property
    def prefetch(self) -> int:
        """How many messages a worker process reserves beyond the one in hand: taken off the
        shared queue, run (in the order reserved) before anything from the queue, and no other
        process's to take. 0: none (each process takes one job at a time)."""
        return 0

    @property
    def on_exit_reserved(self) -> Outcome:
        """What happens to a process's reserved, unstarted messages when it exits cleanly after
        SIGTERM (Celery and Dramatiq give them back to the broker)."""
        return Requeue(0.0, "front")

    @property
    def on_kill_reserved(self) -> Outcome:
        """What happens to a process's reserved, unstarted messages when it is SIGKILLed (Redis
        brokers keep them unacknowledged until a visibility timeout or heartbeat expires)."""
        return Requeue(0.0, "front")

    @property
    def ack_delay(self) -> tuple[float, float]:
        """The least and the most seconds from a job's end to its acknowledgement reaching the
        broker (drawn evenly between them for each job): a SIGKILL of its process within that
        time leaves the message of a job that ran to its end unacknowledged, and it comes back
        as a killed job's does (``on_kill``) and runs again (Celery's ``acks_late``,
        acknowledged through the prefork pool's parent). (0, 0): at once."""
        return (0.0, 0.0)

    @property
    def fetch_batch(self) -> bool:
        """True if an idle process's fetch takes what is queued, up to its ``prefetch`` beyond
        the one it runs, in one go (Dramatiq's Redis consumer); False if idle processes take one
        message each in turn (a BRPOP per message, as Celery's kombu does)."""
        return False

    @property
    def notice_every(self) -> float:
        """Seconds between a process's looks at its stop flag, counted from the moment it was
        ready: a SIGTERM is acted on at the next look, and until then the process goes on
        fetching and working as if nothing had come (Dramatiq's main loop: a 1 s sleep). 0: it
        acts at once."""
        return 0.0

    @property
    def exit_time(self) -> float:
        """Seconds a process takes to exit after SIGTERM once it has no job in hand; a SIGKILL
        due within that time still finds it alive (an idle Celery prefork worker: about 2 s)."""
        return 0.0
