"""Calibration: one compressed scenario run for real by the chaos harness and in the simulator,
with the same parameters, side by side.

The simulator (``deploysim.sim.fleet.simulation.FleetSim``) is fed what really happened, not
what was planned: the deploys at the times the controller sent its SIGTERMs, each crash at the
time and on the worker slot its SIGKILL really hit (its ``Draws``), the same grace, each job's
length as measured (its items times its own mean item time, plus the measured fixed cost of an
attempt), the mean delay from a worker's death to its replacement being ready, the same scaled
strategy value (``timescale``), and the real run's end as its horizon. Agreement is asked of the
completion rate (within ``RATE_TOLERANCE``), of the failed and the lost jobs (each within
``RATE_TOLERANCE`` of the jobs enqueued) and of the wasted work (within ``WASTE_TOLERANCE`` of
the larger of the two, and never less than one job's length: see ``waste_floor``).

Where the two differ, and why:

- Resumed attempts cost something. A real attempt pays a fixed start-up cost before its first
  item (fetch, opening the job's file, taking the lease) and a little after its last
  (acknowledging, or checkpointing and re-queueing when interrupted). For jobs that restart
  from scratch, and for the first attempt of every job, it is part of the measured job length
  the simulator is given. A resumable job pays it again on every resume, and ``FleetSim``
  charges nothing for starting an engine run (``_run_engine`` goes straight to the runner), so
  it under-counts the waste of a job resumed many times. Until ``FleetSim`` takes a
  per-attempt cost, the comparison adds the simulator's resumed attempts times the cost of one
  as measured in the run (``resume_overhead_s``) to the simulated waste, and reports the bare
  figure beside it.
- Phases. A crash that lands within a few milliseconds of a job's end finishes the job in one
  run and kills it in the other; that moves a whole job's work and one job's fate. Replacement
  delays (the mean is fed, the real ones scatter), item-time scatter and the controller's
  reaction time make such near misses a few per cent of the events. Likewise a SIGKILL costs a
  resumable job the items since its last checkpoint, anything from none to a checkpoint
  interval's worth, drawn afresh in each run. A single run of the default scenario agrees to
  within about ten per cent; ``replications`` sums several runs.
- Celery acks_late and the visibility timeout. Redis and SQS make an unacknowledged message
  visible again ``visibility_timeout`` after its DELIVERY (kombu restores messages older than
  that, even ones still running, which is where acks_late duplicates come from). ``FleetSim``
  re-queues a killed acks_late task ``visibility_timeout`` after the KILL (``Requeue(delay=)``
  in ``deploysim.strategies.celery.Celery.on_kill``), later by however long the task had run, and
  never redelivers a task that is still running. When the scaled timeout is longer than the
  run (12 s for Redis's hour at the calibration's scale) neither redelivers and the counts
  agree; with a short ``visibility_timeout`` the simulator redelivers later than the harness,
  and shows none of the duplicates of tasks that outlive the timeout.
- Resque's DirtyExit is recorded when the next worker starts and prunes the dead one (as
  Resque does); the simulator fails the job at the kill. Both end in the failed queue, so the
  counts agree; only the time of the failure differs by the restart delay.
- An idle real worker looks at the queue every few milliseconds (``POLL_MAX``); the simulator
  hands a re-queued job over in the same instant.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import numpy as np

from deploysim.strategies.base import Redeliver, Strategy
from deploysim.strategies.resumable_model import Resumable

from ..errors import SimError
from ..fleet.results import summarize
from ..fleet.simulation import FleetSim
from ..fleet.work import Draws
from .config import ChaosConfig
from .harness import run_chaos

RATE_TOLERANCE = 0.05
"""Largest accepted difference of completion rates (a fraction: 5 percentage points)."""

WASTE_TOLERANCE = 0.15
"""Largest accepted difference of wasted work, as a fraction of the larger of the two."""

COMPARED = ("completion_rate", "completed", "lost", "failed", "pending", "executions",
            "duplicate_item_executions", "wasted_work_s")
"""The numbers set side by side."""

DEFAULT_STRATEGIES = ("sidekiq", "sidekiq-reliable", "resque", "resque-term", "celery",
                      "celery-acks-late", "split", "resumable", "resumable-exactly-once")
"""What ``run_calibration`` runs when not told: every chaos strategy."""


SIM_DRAWS = 20
"""Simulations of each real run for a model that leaves something to chance (a Dramatiq
maintenance, a Celery acknowledgement's lag): the numbers compared are their mean, and their
spread is reported."""


def leaves_to_chance(strategy: Strategy) -> bool:
    """True if the model draws at random while the fleet runs, so that one simulation of a
    run is one draw of many."""
    outcomes = (strategy.on_kill, strategy.on_timeout, strategy.on_kill_reserved)
    low, high = strategy.ack_delay
    return high > low or any(isinstance(o, Redeliver) and 0 < o.chance < 1 for o in outcomes)


def simulate_all(config: ChaosConfig, audit: dict[str, Any], strategy: Strategy, *,
                 replay_lives: bool = True) -> list[dict[str, Any]]:
    """``simulate`` once, or ``SIM_DRAWS`` times with the seeds ``(config.seed, k)`` when the
    model leaves something to chance."""
    if not leaves_to_chance(strategy):
        return [simulate(config, audit, strategy, replay_lives=replay_lives)]
    return [simulate(config, audit, strategy, replay_lives=replay_lives,
                     chance_seed=int(np.random.SeedSequence([config.seed, k]).generate_state(1)[0]))
            for k in range(SIM_DRAWS)]


def mean_result(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The mean of the compared numbers (and ``resumed_attempts``) of several simulations of
    one run."""
    keys = [k for k in (*COMPARED, "resumed_attempts", "enqueued") if k in results[0]]
    return {k: statistics.fmean(float(r[k]) for r in results) for k in keys}


def simulate(config: ChaosConfig, audit: dict[str, Any],
             strategy: Strategy | None = None, *, replay_lives: bool = True,
             chance_seed: int | None = None) -> dict[str, Any]:
    """The simulator's RESULT for the run ``audit`` describes, fed its real events, with
    ``resumed_attempts``: the attempts that went on from a saved cursor (every attempt of a
    job but its first), whose start-up cost the simulator does not charge. ``strategy`` is
    the model to run (default: the run's own strategy, scaled). With ``replay_lives`` (and a
    timeline that has them) each worker process is ready when the real one was; without, every
    replacement is ready the mean restart delay after its predecessor's exit. ``chance_seed``
    seeds what the model leaves to chance (default: ``config.seed``)."""
    timeline = audit["timeline"]
    n, workers = config.jobs, config.workers
    items = np.full(n, config.items, dtype=np.int64)
    crashes = [np.array(sorted(t for t, slot in timeline["crashes"] if slot == w), dtype=float)
               for w in range(workers)]
    if strategy is None:
        strategy = config.scaled_strategy()
    draws = Draws(
        arrivals=np.zeros(n),
        lengths=np.array(timeline["job_lengths_s"], dtype=float),
        items=items,
        hangs=np.zeros(n, dtype=bool),
        deploys=np.array(timeline["deploys"], dtype=float),
        crashes=crashes,
        ready=[np.array(times, dtype=float) for times in timeline.get("ready", ())]
        if replay_lives else (),
        first_fetch=audit.get("first_fetch_s", 0.0),
        seed=config.seed if chance_seed is None else chance_seed,
    )
    sim = FleetSim(
        strategy,
        draws,
        workers=workers,
        restart_delay=audit["restart_delay_s"],
        grace=config.grace,
        horizon=timeline["end_s"],
    )
    ledger = sim.run()
    result = summarize(ledger)
    executions = np.asarray(ledger.executions)
    resumed = int(np.maximum(executions - 1, 0).sum()) if isinstance(strategy, Resumable) else 0
    result["resumed_attempts"] = resumed
    return result


def waste_floor(audits: list[dict[str, Any]]) -> float:
    """Seconds of wasted work below which a difference is not a disagreement: one job's
    length, what a single crash or deploy moves when it falls on one side of a job's end in
    the real run and on the other side in the simulated one."""
    return max(float(a["job_length_s"]) for a in audits)


def _total(results: list[dict[str, Any]], key: str) -> float:
    return float(sum(r[key] for r in results))


def compare(audits: list[dict[str, Any]], sims: list[dict[str, Any]]) -> dict[str, Any]:
    """The real and simulated numbers of one strategy over its replications (counts and work
    summed, the completion rate of the sums), their differences and the verdict.

    ``FleetSim`` charges nothing for starting an engine run, while a real resumed attempt pays
    a start-up (fetch, open, lease) and an interrupted one a stop (checkpoint, re-queue). The
    wasted work compared is therefore the real one against the simulator's plus its resumed
    attempts times the cost of one as measured in the run (``resume_overhead_s``); the bare
    simulated figure, and the real one less its own resuming costs, are reported beside."""
    real = {k: _total(audits, k) for k in COMPARED if k != "completion_rate"}
    simulated = {k: _total(sims, k) for k in COMPARED if k != "completion_rate"}
    enqueued = _total(audits, "enqueued")
    real["completion_rate"] = real["completed"] / enqueued
    simulated["completion_rate"] = simulated["completed"] / enqueued
    resume_cost = sum(s.get("resumed_attempts", 0) * a["resume_overhead_s"]
                      for a, s in zip(audits, sims, strict=True))
    rate_diff = real["completion_rate"] - simulated["completion_rate"]
    w_real = real["wasted_work_s"]
    w_sim = simulated["wasted_work_s"] + resume_cost
    allowed = max(WASTE_TOLERANCE * max(w_real, w_sim), waste_floor(audits))
    rate_ok = abs(rate_diff) <= RATE_TOLERANCE + 1e-12
    waste_ok = abs(w_real - w_sim) <= allowed
    failed_diff = (real["failed"] - simulated["failed"]) / enqueued
    lost_diff = (real["lost"] - simulated["lost"]) / enqueued
    fates_ok = max(abs(failed_diff), abs(lost_diff)) <= RATE_TOLERANCE + 1e-12
    for numbers in (real, simulated):
        for k in COMPARED:
            if k not in ("completion_rate", "wasted_work_s"):
                numbers[k] = round(numbers[k])  # a mean of simulations may be fractional
    return {
        "real": real,
        "sim": simulated,
        "replications": len(audits),
        "sim_resume_cost_s": resume_cost,
        "sim_wasted_work_with_resume_cost_s": w_sim,
        "real_wasted_work_net_s": max(0.0, w_real - _total(audits, "resume_costs_s")),
        "completion_rate_diff": rate_diff,
        "wasted_work_diff_s": w_real - w_sim,
        "wasted_work_allowed_s": allowed,
        "wasted_work_rel": abs(w_real - w_sim) / max(w_real, w_sim) if max(w_real, w_sim) else 0.0,
        "failed_diff": failed_diff,
        "lost_diff": lost_diff,
        "completion_ok": rate_ok,
        "wasted_ok": waste_ok,
        "fates_ok": fates_ok,
        "agree": rate_ok and waste_ok and fates_ok,
        "measured": {
            "item_time_s": statistics.fmean(a["item_time_s"] for a in audits),
            "attempt_overhead_s": statistics.fmean(a["attempt_overhead_s"] for a in audits),
            "resume_overhead_s": statistics.fmean(a["resume_overhead_s"] for a in audits),
            "job_length_s": statistics.fmean(a["job_length_s"] for a in audits),
            "restart_delay_s": statistics.fmean(a["restart_delay_s"] for a in audits),
            "duration_s": _total(audits, "duration_s"),
            "deploys": int(_total(audits, "deploys")),
            "sigterms": int(_total(audits, "sigterms")),
            "sigkills": int(_total(audits, "sigkills")),
            "crashes": int(_total(audits, "crashes")),
        },
    }


def run_calibration(
    config: ChaosConfig,
    strategies: Iterable[str] | None = None,
    progress: Callable[[str], None] | None = None,
    *,
    replications: int = 1,
) -> dict[str, Any]:
    """Run ``config``'s scenario for each of ``strategies`` (default: every chaos strategy)
    for real and in the simulator; the JSON-ready comparison. ``config.strategy`` and
    ``config.params`` are ignored: each strategy runs with the real system's defaults.
    ``replications`` runs each strategy that many times, with seeds ``config.seed``,
    ``config.seed + 1``, ..., and compares the sums: one run's numbers move by a whole job
    whenever a crash falls within a few milliseconds of a job's end, and more runs average
    that out."""
    check_replications(replications)
    names = list(strategies) if strategies is not None else list(DEFAULT_STRATEGIES)
    configs = [config.with_strategy(name) for name in names]  # validates the names first
    out: dict[str, Any] = {}
    for cfg in configs:
        audits, sims = [], []
        for r in range(replications):
            run = replace(cfg, seed=cfg.seed + r)
            if progress is not None:
                progress(f"{run.strategy}: running for real (seed {run.seed})")
            audit = run_chaos(run)
            audits.append(audit)
            sims.append(simulate(run, audit))
        out[cfg.strategy] = compare(audits, sims)
    return calibration(config, replications, out)


def check_replications(replications: object) -> None:
    """SimError unless ``replications`` is a whole number >= 1."""
    if isinstance(replications, bool) or not isinstance(replications, int) or replications < 1:
        raise SimError(f"--replications: {replications!r} must be a whole number >= 1")


def calibration(config: ChaosConfig, replications: int,
                compared: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A calibration's JSON: the scenario, the targets and each strategy's ``compare``."""
    settings = config.to_dict()
    settings.pop("strategy")
    settings.pop("params")
    settings["replications"] = replications
    return {
        "config": settings,
        "targets": {"completion_rate_pp": 100 * RATE_TOLERANCE,
                    "failed_lost_pp": 100 * RATE_TOLERANCE,
                    "wasted_work_rel": WASTE_TOLERANCE},
        "strategies": compared,
        "agree": all(r["agree"] for r in compared.values()),
    }
