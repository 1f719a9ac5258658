"""Results: one run's ledger summarised, and replications combined under one convention.

Percentiles (and the maximum) of several replications are those of all their jobs taken
together, never a mean of each replication's; counts, ``by_length``'s too, are means over the
replications. The ledgers here are written by hand, so every expected number can be checked by
eye.
"""

from __future__ import annotations

import json
import pickle
from typing import Any

import numpy as np
import pytest

from deploysim.sim.fleet import replications
from deploysim.sim.fleet.ledger import Ledger
from deploysim.sim.fleet.results import (
    LengthBucket,
    RunResult,
    combine,
    samples_of,
    summarize,
)
from deploysim.sim.fleet.work import DeployRecord
from deploysim.sim.scenario import scenario_from_dict


def ledger(jobs: list[tuple[float, float | None]], drains: tuple[float, ...] = ()) -> Ledger:
    """A closed ledger of jobs enqueued at 0, each ``(length, run time)``: started at 0 and
    done after its run time, or never done (``None``: pending at the horizon); one deploy per
    drain, SIGTERM at 10 s."""
    lengths = np.array([length for length, _ in jobs], dtype=float)
    led = Ledger(np.zeros(len(jobs)), lengths, np.ones(len(jobs), dtype=np.int64))
    pending = []
    for j, (length, run_time) in enumerate(jobs):
        led.enqueued(j, 0.0)
        led.started(j, 0.0)
        if run_time is None:
            pending.append(j)
            led.attempt(j, 1.0, 0.0)
        else:
            led.attempt(j, length, 0.0)
            led.unit_done(j, f"{j}:0", run_time)
    deploys = [DeployRecord(start=10.0, end=10.0 + d) for d in drains]
    led.close(1000.0, pending, deploys, {})
    return led


def one_job_runs(times: list[float]) -> list[RunResult]:
    """One replication per time, each of a single 5 s job that completed after that time."""
    return [summarize(ledger([(5.0, t)], drains=(t / 10,))) for t in times]


def test_percentiles_are_those_of_every_replications_jobs() -> None:
    times = [float(t) for t in range(10, 110, 10)]  # 10, 20, ..., 100
    result = combine(one_job_runs(times))
    p50, p90, p99 = np.percentile(times, [50, 90, 99])
    for key in ("run_time_s", "sojourn_s"):
        stats = result[key]  # type: ignore[literal-required]
        assert stats["mean"] == pytest.approx(55.0)
        # a mean of one-job percentiles would make each of these 55 s, the mean
        assert stats["p50"] == pytest.approx(p50) and stats["p90"] == pytest.approx(p90)
        assert stats["p99"] == pytest.approx(p99)
        assert stats["max"] == 100.0
    assert result["drain_s"]["p50"] == pytest.approx(5.5)
    assert result["drain_s"]["max"] == pytest.approx(10.0)


def test_pooling_weights_each_job_once() -> None:
    # a replication of three jobs and one of a single job: the pooled median is the median of
    # the four times, and the mean weighs the crowded replication three times as much
    runs = [summarize(ledger([(5.0, 1.0), (5.0, 2.0), (5.0, 3.0)])),
            summarize(ledger([(5.0, 100.0)]))]
    result = combine(runs)
    assert result["run_time_s"]["mean"] == pytest.approx(26.5)
    assert result["run_time_s"]["p50"] == pytest.approx(2.5)
    assert result["run_time_s"]["max"] == 100.0
    assert result["completed"] == 2.0  # counts stay means over replications


def test_replications_without_completed_jobs_add_no_sample() -> None:
    runs = [summarize(ledger([(5.0, None)])), summarize(ledger([(5.0, 40.0)]))]
    result = combine(runs)
    assert result["run_time_s"] == {"mean": 40.0, "p50": 40.0, "p90": 40.0, "p99": 40.0,
                                    "max": 40.0}
    assert result["drain_s"] == {"p50": None, "max": None}  # no deploys anywhere
    assert result["completion_rate"] == 0.5


def test_results_without_samples_give_no_fake_percentiles() -> None:
    # results read back from JSON lost their jobs: mean and maximum can still be exact, a
    # percentile of the pool cannot be known from each run's, and is None
    runs = [json.loads(json.dumps(r)) for r in one_job_runs([10.0, 20.0, 60.0])]
    assert all(samples_of(r) is None for r in runs)
    result = combine(runs)
    assert result["run_time_s"] == {"mean": pytest.approx(30.0), "p50": None, "p90": None,
                                    "p99": None, "max": 60.0}
    assert result["drain_s"] == {"p50": None, "max": pytest.approx(6.0)}


def test_samples_are_no_key_and_survive_a_worker_process() -> None:
    run = summarize(ledger([(5.0, 7.0), (5.0, 9.0)], drains=(3.0,)))
    plain = json.loads(json.dumps(run))
    assert plain == dict(run)  # the JSON holds the keys, nothing else
    back = pickle.loads(pickle.dumps(run))  # what a process pool does with it
    samples = samples_of(back)
    assert samples is not None
    assert samples.run_time_s.tolist() == [7.0, 9.0] and samples.drain_s.tolist() == [3.0]
    assert combine([back, back])["run_time_s"]["p50"] == pytest.approx(8.0)


def test_by_length_counts_are_means_over_replications() -> None:
    # bucket edges are two per decade: 3.16 to 10 s, 10 to 31.6 s
    runs = [summarize(ledger([(5.0, 5.0), (5.0, None), (20.0, 20.0)])),
            summarize(ledger([(5.0, 5.0), (5.0, 5.0), (5.0, 5.0), (5.0, None)]))]
    result = combine(runs)
    buckets: list[LengthBucket] = result["by_length"]
    assert [(b["enqueued"], b["completed"]) for b in buckets] == [(3.0, 2.0), (0.5, 0.5)]
    assert buckets[0]["rate"] == pytest.approx(4 / 6)  # of all the replications' jobs
    assert buckets[1]["rate"] == 1.0
    # the buckets add up to the headline counts, both means over the two replications
    assert sum(b["enqueued"] for b in buckets) == result["enqueued"] == 3.5
    assert sum(b["completed"] for b in buckets) == result["completed"] == 2.5


def _single_job(replications_: int) -> Any:
    return scenario_from_dict(
        {
            "name": "one-job",
            "seed": 5,
            "horizon": 4 * 3600.0,
            "replications": replications_,
            "fleet": {"workers": 1, "restart_delay": 20.0},
            "platform": {"grace": 30.0},
            "deploys": {"schedule": "periodic", "every": 1800.0},
            "workload": {"arrivals": "backlog", "count": 1, "length": 1200.0,
                         "item_time": 1.0},
        },
        "test",
    )


def test_a_run_of_one_job_replications_has_real_percentiles() -> None:
    # each replication draws its own deploy phase, so the single job's time varies; the
    # percentiles of the replications' jobs spread around the mean instead of equalling it
    result = replications.run(_single_job(12), ["sidekiq"], processes=1).strategies["sidekiq"]
    stats = result["run_time_s"]
    assert stats["p50"] is not None and stats["p90"] is not None
    assert stats["p50"] < stats["p90"] <= stats["max"]
    assert stats["p90"] != pytest.approx(stats["mean"])
    assert [b["enqueued"] for b in result["by_length"]] == [1.0]
