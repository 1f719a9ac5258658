"""Properties of the simulator over generated scenarios: every job is accounted for, a scenario
and a seed give the same numbers twice, and the resumable engine keeps its promises (no loss, no
duplicate under graceful deploys, bounded duplicates under crashes) where Sidekiq cannot finish
a job longer than the deploy period.

Scenarios are small (1-4 workers, a few hours, tens of jobs) so each example takes a few
milliseconds; the closed forms of docs/closed-forms.md are checked in test_sim_theory.py.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from deploysim.sim.fleet import replications as simulator
from deploysim.sim.fleet.ledger import Ledger
from deploysim.sim.scenario import Scenario, scenario_from_dict
from deploysim.strategies import STRATEGIES
from deploysim.strategies.base import Strategy

BASES = sorted(STRATEGIES)
HOUR = 3600.0


def examples(n: int) -> int:
    """``n`` examples under the "ci" and "dev" profiles (100 by default), ten times as many
    under "thorough" (1000)."""
    return max(1, n * settings.default.max_examples // 100)


# -- generated values ----------------------------------------------------------------------------


def _seconds(lo: float, hi: float) -> st.SearchStrategy[float]:
    """Durations rounded to 0.1 s, so failing examples read well."""
    return st.integers(round(lo * 10), round(hi * 10)).map(lambda tenths: tenths / 10)


@st.composite
def strategy_tables(draw: st.DrawFn, base: str) -> dict[str, Any]:
    """A ``[strategies.NAME]`` table for ``base``: its defaults or one of its variants."""
    table: dict[str, Any] = {"strategy": base}
    if base == "sidekiq" or base == "split":
        if draw(st.booleans()):
            table["fetch"] = "reliable"
            table["heartbeat_ttl"] = draw(_seconds(0, 120))
            table["recovery_every"] = draw(st.sampled_from([60.0, 600.0, 3600.0]))
        table["timeout"] = draw(st.sampled_from([25.0, 8.0, 0.0, 120.0]))
        table["requeue"] = draw(st.sampled_from(["front", "back"]))
        if base == "split":
            table["chunk"] = draw(st.sampled_from([1, 7, 30, 100]))
    elif base == "resque":
        table["mode"] = draw(st.sampled_from(["quit", "term"]))
        table["on_kill"] = draw(st.sampled_from(["fail", "requeue"]))
        table["term_timeout"] = draw(st.sampled_from([4.0, 0.0, 30.0]))
    elif base == "celery":
        table["acks_late"] = draw(st.booleans())
        table["broker"] = draw(st.sampled_from(["redis", "rabbitmq", "sqs"]))
        if draw(st.booleans()):
            table["visibility_timeout"] = draw(_seconds(0, 600))
        table["soft_shutdown_timeout"] = draw(st.sampled_from([0.0, 10.0, 60.0]))
        if draw(st.booleans()):
            table["time_limit"] = draw(_seconds(1, 1800))
        if draw(st.booleans()):
            table["soft_time_limit"] = draw(_seconds(1, 1800))
        table["prefetch_multiplier"] = draw(st.sampled_from([1, 4]))
        table["disable_prefetch"] = draw(st.booleans())
        table["pool"] = draw(st.sampled_from(["prefork", "threads", "solo"]))
        table["remap_sigterm"] = draw(st.booleans())
    elif base == "rq":
        table["job_timeout"] = draw(st.sampled_from([180.0, 1800.0, 36000.0]))
        table["maintenance_interval"] = draw(st.sampled_from([600.0, 60.0]))
        table["retry"] = draw(st.sampled_from([0, 0, 2]))
    elif base == "dramatiq":
        table["worker_shutdown_timeout"] = draw(st.sampled_from([600.0, 10.0, 0.0]))
        table["heartbeat_timeout"] = draw(st.sampled_from([60.0, 5.0]))
        table["queue_prefetch"] = draw(st.sampled_from([1, 2, 4]))
        table["maintenance_chance"] = draw(st.sampled_from([1000, 1_000_000]))
    else:
        table.update(resumable_params(draw))
    return table


def resumable_params(draw: st.DrawFn) -> dict[str, Any]:
    """Parameters of a resumable strategy: checkpoint interval and cost, run-time cap, lease."""
    params: dict[str, Any] = {
        "checkpoint_every": draw(_seconds(0.5, 120)),
        "checkpoint_cost": draw(st.sampled_from([0.0, 0.0, 0.1, 1.0, 3.0])),
        "requeue": draw(st.sampled_from(["back", "front"])),
    }
    # checkpoints renew the lease: it must last at least two intervals
    params["lease_ttl"] = max(2 * params["checkpoint_every"],
                              draw(st.sampled_from([60.0, 10.0, 300.0])))
    if draw(st.booleans()):
        params["max_runtime"] = draw(_seconds(30, 1800))
    return params


@st.composite
def lengths(draw: st.DrawFn) -> Any:
    """A job-length law, bounded so that no job holds more than a few thousand items."""
    kind = draw(st.sampled_from(["fixed", "exponential", "lognormal", "pareto"]))
    if kind == "fixed":
        return draw(_seconds(0.1, 1800))
    if kind == "exponential":
        return {"kind": "exponential", "mean": draw(_seconds(1, 900))}
    if kind == "lognormal":
        sigma = draw(st.sampled_from([0.3, 1.0, 1.5]))
        return {"kind": "lognormal", "median": draw(_seconds(1, 300)), "sigma": sigma}
    minimum = draw(_seconds(0.5, 30))
    return {
        "kind": "pareto",
        "alpha": draw(st.sampled_from([0.7, 1.0, 1.5])),
        "minimum": minimum,
        "maximum": minimum * draw(st.sampled_from([10, 100, 400])),
    }


@st.composite
def scenario_dicts(
    draw: st.DrawFn,
    *,
    crashes: bool = True,
    hangs: bool = True,
    restarts: bool = True,
    grace: st.SearchStrategy[float] | None = None,
) -> dict[str, Any]:
    """A small scenario file as ``tomllib`` would read it (no strategies yet)."""
    horizon = draw(st.sampled_from([1.0, 2.0, 4.0])) * HOUR
    schedule = draw(st.sampled_from(["none", "poisson", "periodic", "business-hours", "times"]))
    deploys: dict[str, Any] = {"schedule": schedule}
    if schedule == "poisson":
        deploys["rate"] = f"{draw(st.integers(1, 12))}/h"
    elif schedule == "periodic":
        deploys["every"] = draw(_seconds(120, 2 * HOUR))
        if draw(st.booleans()):
            deploys["phase"] = draw(_seconds(0, 600))
    elif schedule == "business-hours":
        # time 0 is Monday 00:00: working hours early in the day fall inside the horizon
        deploys["rate"] = f"{draw(st.integers(2, 20))}/h"
        deploys["hours"] = [0, draw(st.sampled_from([1, 2, 3]))]
    elif schedule == "times":
        deploys["times"] = sorted(draw(st.lists(_seconds(0, horizon), min_size=1, max_size=6)))
    if schedule != "none" and draw(st.booleans()):
        deploys["batch_size"] = draw(st.integers(1, 3))
    item_time = draw(st.sampled_from([0.1, 0.5, 1.0, 5.0, 30.0]))
    length = draw(lengths())
    if isinstance(length, dict) and length["kind"] == "pareto":
        assume(length["maximum"] / item_time <= 20_000)
    if draw(st.booleans()):
        workload: dict[str, Any] = {"arrivals": "backlog", "count": draw(st.integers(1, 25))}
    else:
        workload = {"arrivals": "poisson", "rate": f"{draw(st.integers(2, 60))}/h"}
    workload.update(
        length=length,
        item_time=item_time,
        hang_probability=draw(st.sampled_from([0.0, 0.0, 0.05, 0.3])) if hangs else 0.0,
    )
    return {
        "name": "generated",
        "seed": draw(st.integers(0, 2**16)),
        "horizon": horizon,
        "replications": 1,
        "fleet": {"workers": draw(st.integers(1, 4)), "restart_delay": draw(_seconds(0, 30))},
        "platform": {
            "grace": draw(grace if grace is not None else _seconds(0, 60)),
            "daily_restarts": draw(st.booleans()) if restarts else False,
        },
        "deploys": deploys,
        "crashes": {"mtbf": draw(_seconds(600, 6 * HOUR))}
        if crashes and draw(st.booleans())
        else {},
        "workload": workload,
    }


def build(d: dict[str, Any], tables: dict[str, dict[str, Any]]) -> Scenario:
    """The scenario of ``d`` running the strategies of ``tables``."""
    return scenario_from_dict({**d, "strategies": tables}, "generated")


def run_one(scenario: Scenario, name: str) -> dict[str, Any]:
    """The RESULT of the scenario's first replication for one strategy."""
    return simulator.run(scenario, [name]).strategies[name]


def ledger_of(scenario: Scenario, strategy: Strategy) -> tuple[Ledger, simulator.Draws]:
    """The ledger of one run (what ``simulate_one`` summarises), with its draws."""
    draws = simulator.draw(scenario, scenario.seed, 0)
    return simulator.fleet_for(scenario, strategy, draws).run(), draws


# -- every job in exactly one bucket ---------------------------------------------------------------


@pytest.mark.parametrize("base", BASES)
@settings(max_examples=examples(40))
@given(data=st.data())
def test_every_job_ends_in_exactly_one_bucket(base: str, data: st.DataObject) -> None:
    d = data.draw(scenario_dicts(), label="scenario")
    table = data.draw(strategy_tables(base), label="strategy")
    r = run_one(build(d, {"s": table}), "s")
    counts = [r[k] for k in ("completed", "failed", "lost", "pending")]
    assert all(c >= 0 for c in counts), r
    assert r["enqueued"] == sum(counts), r
    # the model's own loss records agree with the count derived from the other buckets
    assert r["explicitly_lost"] == r["lost"], r
    assert sum(b["enqueued"] for b in r["by_length"]) == r["enqueued"]
    assert sum(b["completed"] for b in r["by_length"]) == r["completed"]
    assert r["executions"] >= r["completed"]
    assert r["duplicate_item_executions"] >= 0
    assert r["wasted_work_s"] >= 0 and r["hung_time_s"] >= 0
    if r["enqueued"]:
        assert r["completion_rate"] == pytest.approx(r["completed"] / r["enqueued"])
    # the platform's SIGKILL ends each batch of a deploy within the grace
    if r["drain_s"]["max"] is not None:
        size = d["deploys"].get("batch_size") or d["fleet"]["workers"]
        batches = math.ceil(d["fleet"]["workers"] / size)
        assert r["drain_s"]["max"] <= batches * d["platform"]["grace"] + 1e-6, r


@pytest.mark.parametrize("base", BASES)
@settings(max_examples=examples(25))
@given(data=st.data())
def test_a_completed_job_ran_each_of_its_items(base: str, data: st.DataObject) -> None:
    d = data.draw(scenario_dicts(), label="scenario")
    table = data.draw(strategy_tables(base), label="strategy")
    scenario = build(d, {"s": table})
    ledger, _ = ledger_of(scenario, simulator.strategies_of(scenario, ["s"])["s"])
    a = ledger.arrays()
    done = ~np.isnan(a["done_t"])
    # the items each job ever ran are exactly its items once it completed, never more
    assert (a["unique_items"] <= a["items"]).all()
    assert (a["unique_items"][done] == a["items"][done]).all()
    assert (a["item_execs"] >= a["unique_items"]).all()
    # a job cannot complete before it has been worked on for its length
    assert (a["work"][done] >= a["length"][done] * (1 - 1e-9) - 1e-6).all()


# -- determinism --------------------------------------------------------------------------------


@settings(max_examples=examples(30))
@given(data=st.data())
def test_same_scenario_and_seed_give_the_same_json(data: st.DataObject) -> None:
    d = data.draw(scenario_dicts(), label="scenario")
    tables = {base: data.draw(strategy_tables(base), label=base) for base in BASES}
    scenario = build(d, tables)
    seed = data.draw(st.integers(0, 2**31), label="seed")
    first = simulator.run(scenario, seed=seed, processes=1).to_dict()
    second = simulator.run(build(d, tables), seed=seed, processes=1).to_dict()
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


DETERMINISM_SCRIPT = """
import json, sys
from deploysim.sim.fleet import replications as simulator
from deploysim.sim.scenario import scenario_from_dict
d = json.loads(sys.argv[1])
result = simulator.run(scenario_from_dict(d, "generated"), processes=int(sys.argv[2]))
print(json.dumps(result.to_dict(), sort_keys=True))
"""


def test_the_numbers_do_not_depend_on_the_process_or_the_pool() -> None:
    """Byte for byte the same JSON in this process, in fresh interpreters with other hash
    seeds, and from a pool of worker processes (docs/architecture.md, principle 4)."""
    d = {
        "name": "generated",
        "seed": 7,
        "horizon": 2 * HOUR,
        "replications": 2,
        "fleet": {"workers": 3, "restart_delay": 5.0},
        "platform": {"grace": 20.0, "daily_restarts": True},
        "deploys": {"schedule": "poisson", "rate": "6/h", "batch_size": 2},
        "crashes": {"mtbf": HOUR},
        "workload": {
            "arrivals": "poisson",
            "rate": "40/h",
            "length": {"kind": "lognormal", "median": 60.0, "sigma": 1.0},
            "item_time": 1.0,
            "hang_probability": 0.05,
        },
        "strategies": {
            "sidekiq-reliable": {"strategy": "sidekiq", "fetch": "reliable"},
            "celery-late": {"strategy": "celery", "acks_late": True},
            "resumable-costly": {"strategy": "resumable", "checkpoint_cost": 0.5},
        },
    }
    here = json.dumps(
        simulator.run(scenario_from_dict(d, "generated"), processes=1).to_dict(), sort_keys=True
    )
    root = Path(__file__).resolve().parents[1]
    outputs = []
    for hash_seed, processes in (("1", "1"), ("2", "3")):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(root)}
        out = subprocess.run(
            [sys.executable, "-c", DETERMINISM_SCRIPT, json.dumps(d), processes],
            env=env,
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.append(out.stdout.strip())
    assert outputs == [here, here]


# -- the resumable engine ------------------------------------------------------------------------


@st.composite
def graceful(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A scenario with no crashes, no daily restarts and no hung jobs, whose grace outlasts
    the resumable drain (the item in hand plus at most two checkpoint writes), with a resumable
    strategy table."""
    params = resumable_params(draw)
    d = draw(scenario_dicts(crashes=False, hangs=False, restarts=False, grace=st.just(0.0)))
    d["platform"]["grace"] = d["workload"]["item_time"] * 2 + 2 * params["checkpoint_cost"] + 1
    return d, {"strategy": "resumable", **params}


@settings(max_examples=examples(60))
@given(case=graceful())
def test_resumable_under_graceful_deploys_never_loses_fails_or_repeats(
    case: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    d, table = case
    r = run_one(build(d, {"r": table}), "r")
    assert r["hard_kills"] == 0, r
    assert r["lost"] == r["failed"] == r["explicitly_lost"] == 0, r
    assert r["duplicate_item_executions"] == 0, r
    assert r["completed"] + r["pending"] == r["enqueued"]
    # each batch of a deploy drains within one item (at most 1.5 item_time: a job of L s
    # holds round(L / item_time) items) and two checkpoint writes
    if r["drain_s"]["max"] is not None:
        size = d["deploys"].get("batch_size") or d["fleet"]["workers"]
        batches = math.ceil(d["fleet"]["workers"] / size)
        per_batch = 1.5 * d["workload"]["item_time"] + 2 * table["checkpoint_cost"]
        assert r["drain_s"]["max"] <= batches * per_batch + 1e-6, r


def items_per_loss(draws: simulator.Draws, checkpoint_every: float, lease_ttl: float) -> int:
    """The most items one SIGKILL can cost a job: those run since its last durable checkpoint.
    Checkpoints are due every min(checkpoint_every, lease_ttl / 2) s of clock, taken at the
    first item boundary after that, and a kill during the write loses that interval as well."""
    if len(draws.items) == 0:
        return 0
    every = min(checkpoint_every, lease_ttl / 2)
    item = draws.lengths / draws.items
    per_interval = np.ceil(every / item) + 1
    return int(np.minimum(draws.items, per_interval).max())


@settings(max_examples=examples(60))
@given(data=st.data())
def test_resumable_under_crashes_loses_nothing_and_repeats_a_bounded_amount(
    data: st.DataObject,
) -> None:
    d = data.draw(scenario_dicts(crashes=False), label="scenario")
    d["crashes"] = {"mtbf": data.draw(_seconds(300, 4 * HOUR), label="mtbf")}
    table = {"strategy": "resumable", **resumable_params(data.draw)}
    scenario = build(d, {"r": table})
    r = run_one(scenario, "r")
    assert r["lost"] == r["explicitly_lost"] == 0, r
    assert r["failed"] == 0, r  # nothing in these jobs raises
    strategy = simulator.strategies_of(scenario, ["r"])["r"]
    draws = simulator.draw(scenario, scenario.seed, 0)
    bound = items_per_loss(draws, strategy.checkpoint_every, strategy.lease_ttl)
    assert r["duplicate_item_executions"] <= bound * (r["crashes"] + r["hard_kills"]), r


# -- a job longer than the deploy period -----------------------------------------------------------


@settings(max_examples=examples(40))
@given(data=st.data())
def test_a_job_longer_than_the_deploy_period_never_completes_under_sidekiq(
    data: st.DataObject,
) -> None:
    """With deploys exactly every P seconds a Sidekiq job gets at most P + timeout seconds
    between its start and the end of the timeout after the next deploy (a worker may start it
    at the very instant of a deploy, after that deploy has been dealt with), and it starts from
    scratch each time: a fixed length L > P + timeout never completes, whatever the grace,
    restart delay, fetch, requeue end, crashes or daily restarts."""
    period = data.draw(_seconds(60, HOUR), label="period")
    timeout = data.draw(st.sampled_from([25.0, 8.0, 0.0, 300.0]), label="timeout")
    length = period + timeout + data.draw(_seconds(0.1, 2 * HOUR), label="excess")
    d = data.draw(scenario_dicts(), label="scenario")
    d["deploys"] = {"schedule": "periodic", "every": period}
    d["workload"]["length"] = length
    d["workload"]["hang_probability"] = 0.0
    table = data.draw(strategy_tables("sidekiq"), label="strategy")
    table["timeout"] = timeout
    r = run_one(build(d, {"s": table}), "s")
    assert r["completed"] == 0, r
    assert r["enqueued"] == r["failed"] + r["lost"] + r["pending"]


@settings(max_examples=examples(25))
@given(data=st.data())
def test_the_same_job_completes_under_resumable(data: st.DataObject) -> None:
    """A few fixed-length jobs (no more than the workers) longer than the deploy period, exactly
    periodic deploys, no crashes, a grace that outlasts the resumable drain: every job
    completes by a horizon that allows each period P - restart_delay - drain of work."""
    workers = data.draw(st.integers(1, 4), label="workers")
    period = data.draw(_seconds(600, HOUR), label="period")
    item_time = data.draw(st.sampled_from([0.1, 1.0, 5.0, 30.0]), label="item_time")
    length = period + 25 + data.draw(_seconds(0.1, 3 * period), label="excess")
    restart_delay = data.draw(_seconds(0, 30), label="restart_delay")
    params = resumable_params(data.draw)
    params["checkpoint_cost"] = min(params["checkpoint_cost"], 1.0)
    params["checkpoint_every"] = max(params["checkpoint_every"], 5.0)
    params.pop("max_runtime", None)
    cost = params["checkpoint_cost"]
    drain = item_time + 2 * cost
    per_period = (period - restart_delay - drain - item_time) / (1 + cost / 5.0)
    periods = math.ceil(length / per_period) + 2
    d = {
        "name": "long-jobs",
        "seed": data.draw(st.integers(0, 2**16), label="seed"),
        "horizon": period * periods,
        "replications": 1,
        "fleet": {"workers": workers, "restart_delay": restart_delay},
        "platform": {"grace": drain + 1},
        "deploys": {"schedule": "periodic", "every": period},
        "workload": {
            "arrivals": "backlog",
            "count": data.draw(st.integers(1, workers), label="jobs"),
            "length": length,
            "item_time": item_time,
        },
        "strategies": {
            "r": {"strategy": "resumable", **params},
            "s": {"strategy": "sidekiq"},
        },
    }
    result = simulator.run(scenario_from_dict(d, "long-jobs"), processes=1).strategies
    assert result["r"]["completed"] == result["r"]["enqueued"], result["r"]
    assert result["r"]["duplicate_item_executions"] == 0
    assert result["s"]["completed"] == 0, result["s"]


# -- coalesced checkpoints -------------------------------------------------------------------


def _ledger_values(ledger: Ledger) -> dict[str, Any]:
    """Everything a ledger holds, as plain values (arrays as lists, records as dicts)."""
    out: dict[str, Any] = {}
    for key, value in vars(ledger).items():
        if isinstance(value, np.ndarray):
            value = value.tolist()
        elif isinstance(value, list) and value and hasattr(value[0], "__slots__"):
            value = [{s: getattr(v, s) for s in v.__slots__} for v in value]
        out[key] = value
    return out


@settings(max_examples=examples(80))
@given(data=st.data())
def test_coalescing_unobservable_checkpoints_changes_no_ledger(data: st.DataObject) -> None:
    """A resumable job's chunk runs through the checkpoints that nothing can observe, charging
    their cost (``SimJob``): with it on and off, every ledger is the same, value for value,
    through deploys (rolling or not), crashes, hangs, run-time caps and costly writes."""
    d = data.draw(scenario_dicts(), label="scenario")
    table = {"strategy": "resumable", **resumable_params(data.draw)}
    scenario = build(d, {"r": table})
    strategy = simulator.strategies_of(scenario, ["r"])["r"]
    draws = simulator.draw(scenario, scenario.seed, 0)
    ledgers = [_ledger_values(simulator.fleet_for(scenario, strategy, draws,
                                                  coalesce=coalesce).run())
               for coalesce in (True, False)]
    assert ledgers[0] == ledgers[1]
