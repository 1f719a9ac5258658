"""The platform of a real-systems run: one container per worker slot, deploys and crashes on the
seeded schedule of ``deploysim.sim.chaos.schedule``, replacements as soon as a container is gone.

A deploy sends SIGTERM to each live container's main process and SIGKILLs every process of
those still alive ``grace`` seconds later; a crash SIGKILLs one container at once. A container
that is gone is replaced at once, so the restart delay the simulator is given is what a new
container really takes to start and say it is ready (measured from the log, per life). The run
ends after ``duration``, or once every job has completed or failed by the system's own records;
then every container is SIGKILLed, as a platform stopping the app would.
"""

from __future__ import annotations

import atexit
import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..config import ChaosConfig
from ..schedule import make_schedule
from .containers import Container
from .systems.base import RunContext, System

Progress = Callable[[str], None]

TICK = 0.01
"""Seconds between the controller's looks at its containers."""

CHECK_EVERY = 0.25
"""Seconds between looks at whether the work is done."""

READY_TIMEOUT = 60.0
"""Seconds the first containers may take to say they are ready before the run gives up."""


@dataclass(slots=True, eq=False)
class Life:
    """One container of a worker slot. Times are seconds from the run's start (negative before
    it). ``cause``: "exit" (by itself), "term" (by itself after SIGTERM), "deploy-kill",
    "crash", "final" (killed when the run ended)."""

    slot: int
    life: int
    container: Container
    started: float
    ready: float | None = None
    term_at: float | None = None
    kill_due: float = math.inf
    killed_as: str = ""
    ended: float | None = None
    cause: str = ""
    exitcode: int | None = None
    _log_offset: int = 0

    @property
    def name(self) -> str:
        """The container's id in the results: "slot.life"."""
        return f"{self.slot}.{self.life}"

    def to_dict(self) -> dict[str, Any]:
        return {"slot": self.slot, "life": self.life, "started": self.started,
                "ready": self.ready, "term_at": self.term_at, "ended": self.ended,
                "cause": self.cause, "exitcode": self.exitcode}


@dataclass(slots=True)
class RealRecord:
    """What the controller did and saw."""

    t0: float = 0.0  # unix time of the run's start (all workers ready, jobs enqueued)
    end: float = 0.0
    ended_by: str = ""
    lives: list[Life] = field(default_factory=list)
    deploys: list[dict[str, Any]] = field(default_factory=list)
    crashes: list[dict[str, Any]] = field(default_factory=list)
    survivors: list[int] = field(default_factory=list)


class RealController:
    """Runs the containers of one run (see the module docstring)."""

    def __init__(self, system: System, ctx: RunContext, config: ChaosConfig,
                 done: Callable[[], bool], progress: Progress | None = None) -> None:
        self.system = system
        self.ctx = ctx
        self.config = config
        self.done = done
        self.progress = progress
        self.ready = re.compile(system.ready)
        self.schedule = make_schedule(config.seed, config.duration, config.workers,
                                      config.deploy_every, config.crash_every)
        self.live: dict[int, Life] = {}
        self.lives = [0] * config.workers
        self.record = RealRecord()
        self._mono0 = time.monotonic()
        os.makedirs(os.path.join(ctx.workdir, "logs"), exist_ok=True)

    def now(self) -> float:
        return time.monotonic() - self._mono0

    # -- containers -----------------------------------------------------------------------------

    def _start(self, slot: int) -> Life:
        self.lives[slot] += 1
        life_no = self.lives[slot]
        command = self.system.worker(self.ctx, slot, life_no)
        env = {
            **command.env,
            "DEPLOYSIM_RESULTS": self.ctx.results_url,
            "DEPLOYSIM_BROKER": self.ctx.broker_url,
            "DEPLOYSIM_CONTAINER": f"{slot}.{life_no}",
            "DEPLOYSIM_SETTINGS": _json(self.ctx.settings),
            "DEPLOYSIM_STORE_URL": self.ctx.store_url,  # the resumable engine's store, if any
            "PYTHONUNBUFFERED": "1",
        }
        log = os.path.join(self.ctx.workdir, "logs", f"worker-{slot}.{life_no}.log")
        life = Life(slot, life_no, Container(command.argv, env, log, command.cwd), self.now())
        self.live[slot] = life
        self.record.lives.append(life)
        return life

    def _look_ready(self, life: Life) -> None:
        if life.ready is not None:
            return
        try:
            with open(life.container.log, "rb") as f:
                f.seek(life._log_offset)
                text = f.read()
        except FileNotFoundError:
            return
        cut = text.rfind(b"\n") + 1  # read whole lines only
        life._log_offset += cut
        for line in text[:cut].decode("utf-8", "replace").splitlines():
            if self.ready.search(line):
                life.ready = self.now()
                return

    def _kill(self, life: Life, cause: str) -> bool:
        if life.killed_as or life.ended is not None:
            return False
        life.killed_as = cause
        at = self.now()
        life.container.kill()
        life.ended, life.cause = at, cause
        life.exitcode = life.container.process.returncode
        del self.live[life.slot]
        return True

    def _reap(self) -> None:
        for life in list(self.live.values()):
            if life.container.alive():
                continue
            # the main process is gone: whatever it left behind dies with the container
            life.container.kill()
            life.ended = self.now()
            life.exitcode = life.container.process.returncode
            life.cause = "term" if life.term_at is not None else "exit"
            del self.live[life.slot]

    def kill_all(self, cause: str = "final") -> None:
        for life in list(self.live.values()):
            self._kill(life, cause)

    # -- the run --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start every slot's first container and wait until all say they are ready."""
        atexit.register(self.kill_all)
        for slot in range(self.config.workers):
            self._start(slot)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            for life in self.live.values():
                self._look_ready(life)
            self._reap()
            if any(life.ready is None and life.ended is not None for life in self.record.lives):
                gone = next(life for life in self.record.lives if life.ended is not None)
                self.kill_all()
                raise RuntimeError(f"{self.system.name} worker exited at start-up "
                                   f"(status {gone.exitcode}); see {gone.container.log}")
            if all(life.ready is not None for life in self.live.values()):
                break
            if time.monotonic() > deadline:
                self.kill_all()
                raise RuntimeError(f"{self.system.name} workers were not ready within "
                                   f"{READY_TIMEOUT:.0f} s; see {self.ctx.workdir}/logs")
            time.sleep(TICK)

    def begin(self) -> None:
        """Set the run's clock: time 0 is now."""
        shift = self.now()
        self._mono0 += shift
        for life in self.record.lives:
            life.started -= shift
            if life.ready is not None:
                life.ready -= shift
        self.record.t0 = time.time()

    def run(self) -> RealRecord:
        """Play the schedule until the duration ends or the work is done."""
        config, record = self.config, self.record
        deploys = list(self.schedule.deploys)
        crashes = list(self.schedule.crashes)
        next_check = 0.0
        next_report = 1.0
        try:
            while True:
                now = self.now()
                if now >= config.duration:
                    record.ended_by = "duration"
                    break
                self._reap()
                for life in list(self.live.values()):
                    self._look_ready(life)
                    if life.kill_due <= now and self._kill(life, "deploy-kill"):
                        record.deploys[-1]["sigkills"] += 1
                while deploys and deploys[0] <= now:
                    deploys.pop(0)
                    self._deploy(now)
                while crashes and crashes[0][0] <= now:
                    _, slot = crashes.pop(0)
                    life = self.live.get(slot)
                    hit = life is not None and self._kill(life, "crash")
                    record.crashes.append({"t": now, "slot": slot, "hit": hit})
                self._reap()
                for slot in range(config.workers):
                    if slot not in self.live:
                        self._start(slot)
                if now >= next_check:
                    next_check = now + CHECK_EVERY
                    if self.done():
                        record.ended_by = "done"
                        break
                if self.progress is not None and now >= next_report:
                    next_report = now + 1.0
                    self.progress(self._status(now))
                time.sleep(TICK)
        finally:
            record.end = self.now()
            self.kill_all()
            atexit.unregister(self.kill_all)
        record.survivors = sorted(pid for life in record.lives
                                  for pid in life.container.processes())
        return record

    def _deploy(self, now: float) -> None:
        entry = {"t": now, "sigterms": 0, "sigkills": 0}
        self.record.deploys.append(entry)
        for life in self.live.values():
            if life.term_at is None and life.container.term():
                entry["sigterms"] += 1
                life.term_at = now
                life.kill_due = now + self.config.grace

    def _status(self, now: float) -> str:
        kills = sum(1 for life in self.record.lives if life.killed_as in ("crash", "deploy-kill"))
        return (f"{self.system.name}: {now:.1f}s, {len(self.record.deploys)} deploys, "
                f"{kills} SIGKILLs, {len(self.record.lives)} containers")


def _json(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True)
