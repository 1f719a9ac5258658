"""What the harness needs to know of a real job system: how to enqueue through its own client,
how to start one of its workers, when the worker is ready, where its own records put each job
at the end, and the simulator's model of it with the same settings.

One subclass of ``System`` per ``--system`` name, in this package; the registry is
``deploysim.sim.chaos.real.systems.SYSTEMS``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from deploysim.strategies.base import Strategy
from deploysim.strategies.hints import did_you_mean

from ....errors import SimError


@dataclass(frozen=True, slots=True)
class RunContext:
    """One run as a system adapter sees it: the run's folder, the Redis URLs (database 0 for
    the system, 1 for the results, 2 free for a result backend), the jobs and the settings
    from ``System.settings``; for a system that keeps progress in a store (the resumable
    engine's), the store's URL (database 3 of the run's Redis, or a PostgreSQL of the run's
    own)."""

    workdir: str
    redis_socket: str
    broker_url: str
    results_url: str
    jobs: int
    items: int
    item_time: float
    grace: float
    settings: dict[str, Any] = field(default_factory=dict)
    store_url: str = ""

    def db_url(self, db: int) -> str:
        """The run's Redis, database ``db``."""
        return f"unix://{self.redis_socket}?db={db}"


@dataclass(frozen=True, slots=True)
class WorkerCommand:
    """One worker container's command line, extra environment and folder."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None


def _installed(module: str) -> bool:
    """True if ``module`` can be imported (kombu replaces its module object in sys.modules,
    whose ``__spec__`` is then None: ``find_spec`` raises ValueError for it)."""
    if module in sys.modules:
        return True
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _setting(system: str, key: str, raw: Any, default: Any) -> Any:
    """``raw`` as a value of the kind of ``default``, or SimError naming ``key``."""
    value = raw
    if isinstance(raw, str) and not isinstance(default, str):
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
    kind = type(default)
    ok = (isinstance(value, bool) if kind is bool
          else isinstance(value, int) and not isinstance(value, bool) if kind is int
          else isinstance(value, int | float) and not isinstance(value, bool)
          and math.isfinite(value) and value >= 0 if kind is float
          else isinstance(value, str) if kind is str
          else True)
    if not ok:
        what = {bool: "true or false", int: "a whole number", float: "a number >= 0",
                str: "a string"}.get(kind, kind.__name__)
        raise SimError(f"--setting {key}: {raw!r} is not {what} "
                       f"({system}'s value here is {default!r})")
    return float(value) if kind is float else value


#: Where a system's own records have a job at the end of a run.
BOOKKEEPING = ("queued", "held", "retry", "failed")


class System:
    """A real job system (see the module docstring). Subclasses set the class attributes and
    implement the methods that raise NotImplementedError."""

    name: ClassVar[str] = ""
    distribution: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    model: ClassVar[str] = ""
    ready: ClassVar[str] = ""
    #: The broker the system runs on: the run's Redis, or a RabbitMQ of the run's own.
    broker: ClassVar[str] = "redis"
    #: True for a system whose jobs resume from a cursor (an attempt does not start over).
    resumes: ClassVar[bool] = False
    #: Python modules the system needs, and the extra that installs them.
    modules: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str] = ""

    def version(self) -> str:
        """The version of the real package that runs."""
        return importlib.metadata.version(self.distribution)

    def missing(self) -> str | None:
        """None when everything this system needs is installed, else one line saying what is
        missing and how to install it."""
        absent = [m for m in self.modules if not _installed(m)]
        if absent:
            return (f"{self.name} needs {', '.join(absent)}: "
                    f"pip install 'deploysim[{self.extra or self.name}]'")
        return None

    def settings(self, scale: float, grace: float) -> dict[str, Any]:
        """The system's settings for a run whose times are ``scale`` times real-world ones."""
        raise NotImplementedError

    def configure(self, settings: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
        """``settings`` with ``overrides`` put over them (the system's own units, after
        scaling; a string is read as JSON where it can be, ``--setting KEY=VALUE``). SimError
        naming the key for a key the system does not have or a value of the wrong kind."""
        out = dict(settings)
        for key, raw in overrides.items():
            if key not in settings:
                raise SimError(f"--setting {key}: not a setting of {self.name}; "
                               f"{did_you_mean(key, sorted(settings), always=True)}")
            out[key] = _setting(self.name, key, raw, settings[key])
        return out

    def strategy(self, settings: dict[str, Any]) -> Strategy:
        """The simulator's model of the system with ``settings``."""
        raise NotImplementedError

    def enqueue(self, ctx: RunContext) -> None:
        """Enqueue jobs 0 .. ctx.jobs - 1, in order, with the system's own client."""
        raise NotImplementedError

    def worker(self, ctx: RunContext, slot: int, life: int) -> WorkerCommand:
        """The command of one worker container (concurrency 1)."""
        raise NotImplementedError

    def bookkeeping(self, ctx: RunContext) -> dict[int, str]:
        """Where the system's own records have each job (one of ``BOOKKEEPING``); jobs in no
        record are left out."""
        raise NotImplementedError

    def effects(self, ctx: RunContext) -> dict[int, dict[int, int]] | None:
        """Per job, how many times each item's effect is on record, where the effects are kept
        apart from the item records (a database the job commits them to); None where the
        effect of an item is its item record."""
        return None

    def stored_completions(self, ctx: RunContext) -> set[int]:
        """The jobs a store of the system's has as completed (none: it keeps no store)."""
        return set()

    def cautions(self, settings: dict[str, Any], grace: float) -> list[str]:
        """What in a run with ``settings`` and ``grace`` would make the real system lose or
        keep work that a deployment at real scale would not (a compressed run shrinks the grace
        but not the process's own times): one line each, logged and kept in the audit."""
        return []

    def store_kind(self, settings: dict[str, Any]) -> str:
        """The store a run with ``settings`` keeps jobs' progress in: its setting ``store``
        ("redis", "postgres"), or "" for a system that keeps none."""
        return str(settings.get("store", ""))

    def failed(self, ctx: RunContext) -> set[int]:
        """The jobs the system's records say failed, read while the run goes on (a look that
        must change nothing)."""
        return {job for job, where in self.bookkeeping(ctx).items() if where == "failed"}

    def describe(self) -> str:
        return f"{self.name}: {self.summary}"
