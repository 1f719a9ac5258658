"""Calibration: the same compressed scenario run for real and in the simulator must agree
within the targets (completion rates within 5 percentage points, failed and lost each within 5
points of the jobs enqueued, wasted work within 15 %)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deploysim.sim.chaos import (
    CALIBRATION_DEFAULTS,
    ChaosConfig,
    format_calibration,
    run_calibration,
)
from deploysim.sim.chaos.calibrate import (
    RATE_TOLERANCE,
    SIM_DRAWS,
    WASTE_TOLERANCE,
    compare,
    leaves_to_chance,
    mean_result,
    simulate,
    simulate_all,
)
from deploysim.sim.errors import SimError
from deploysim.strategies.dramatiq import Dramatiq

ONE_RUN = ("sidekiq", "resque", "celery")
TWO_RUNS = ("split", "resumable", "resumable-exactly-once")
"""The five strategies of the registry, and the engine's exactly-once mode. Where a SIGKILL
takes a whole job, the real and the simulated run lose the same jobs to the same kills, and one
run of each agrees closely. A split job is lost when any one of its sub-jobs is, and which
sub-job a kill finds depends on milliseconds; a resumable job loses the items since its last
checkpoint, anything from none to a checkpoint's worth. Those totals are sums of many small
draws made afresh in each run, so they are compared over two runs."""


def _fake_audit(config: ChaosConfig, **timeline: object) -> dict:
    """The parts of an audit ``simulate`` reads, for a run that never happened."""
    lengths = [config.items * config.item_time] * config.jobs
    return {
        "restart_delay_s": 0.0,
        "timeline": {"deploys": [], "crashes": [], "end_s": 10.0, "job_lengths_s": lengths,
                     **timeline},
    }


def test_simulate_replays_the_crashes_that_really_happened() -> None:
    config = ChaosConfig.from_args(strategy="sidekiq", workers=2, jobs=4, items=100,
                                   item_time="10ms", grace="1s")
    # each job lasts 1 s; worker 1 is killed half-way through its first job
    result = simulate(config, _fake_audit(config, crashes=[[0.5, 1]]))
    assert result["lost"] == 1
    assert result["completed"] == 3
    assert result["wasted_work_s"] == pytest.approx(0.5)
    assert result["resumed_attempts"] == 0


def test_simulate_counts_resumed_attempts_of_the_engine() -> None:
    config = ChaosConfig.from_args(strategy="resumable", workers=1, jobs=1, items=100,
                                   item_time="10ms", grace="1s")
    result = simulate(config, _fake_audit(config, deploys=[0.5]))
    assert result["completed"] == 1
    assert result["resumed_attempts"] == 1  # interrupted by the deploy, resumed once


def test_simulate_replays_when_each_worker_was_ready() -> None:
    """Killed at 0.5, worker 1's replacement was ready at 3 in the real run, after the end at
    2.5: worker 0 completes jobs 0 and 2 alone. Replaced at once (the restart delay), worker 1
    would have completed job 2 as well and left job 3 to worker 0 (jobs 0, 2 and 3)."""
    config = ChaosConfig.from_args(strategy="sidekiq", workers=2, jobs=4, items=100,
                                   item_time="10ms", grace="1s")
    audit = _fake_audit(config, crashes=[[0.5, 1]], end_s=2.5,
                        ready=[[-0.1], [-0.1, 3.0]])
    assert simulate(config, audit)["completed"] == 2
    assert simulate(config, audit, replay_lives=False)["completed"] == 3


def test_a_model_that_draws_at_random_is_simulated_many_times() -> None:
    """Dramatiq's maintenance is a draw: the killed job's redelivery before the end is a matter
    of chance, so its simulations differ; with a maintenance on every command it is not."""
    config = ChaosConfig.from_args(strategy="sidekiq", workers=3, jobs=6, items=20,
                                   item_time="100ms", grace="1s")
    audit = _fake_audit(config, crashes=[[1.0, 0]], end_s=25.0)
    chancy = Dramatiq(heartbeat_timeout=3.0, worker_timeout=0.05, worker_shutdown_timeout=30.0)
    assert leaves_to_chance(chancy)
    draws = simulate_all(config, audit, chancy)
    assert len(draws) == SIM_DRAWS
    # the crash takes worker 0's job in hand and the one it had reserved
    assert len({d["completed"] for d in draws}) > 1 and max(d["completed"] for d in draws) == 6
    mean = mean_result(draws)
    assert mean["completed"] == pytest.approx(np.mean([d["completed"] for d in draws]))
    assert draws == simulate_all(config, audit, chancy)  # the same seeds
    sure = Dramatiq(heartbeat_timeout=3.0, worker_timeout=0.05, worker_shutdown_timeout=30.0,
                    maintenance_chance=1_000_000)
    assert not leaves_to_chance(sure)
    (once,) = simulate_all(config, audit, sure)
    assert once["completed"] == 6


def _numbers(completed: int, wasted: float) -> dict:
    return {"enqueued": 100, "completed": completed, "completion_rate": completed / 100,
            "lost": 100 - completed, "failed": 0, "pending": 0, "executions": 100,
            "duplicate_item_executions": 0, "wasted_work_s": wasted, "duration_s": 5.0,
            "item_time_s": 0.001, "attempt_overhead_s": 0.002, "resume_overhead_s": 0.002,
            "resume_costs_s": 0.0, "job_length_s": 0.1, "restart_delay_s": 0.005,
            "deploys": 1, "sigterms": 4, "sigkills": 10, "crashes": 10}


def test_compare_applies_the_targets() -> None:
    ok = compare([_numbers(80, 10.0)], [_numbers(76, 11.0)])
    assert ok["agree"] and ok["completion_rate_diff"] == pytest.approx(0.04)
    rate = compare([_numbers(80, 10.0)], [_numbers(74, 10.0)])
    assert not rate["completion_ok"] and rate["wasted_ok"]
    waste = compare([_numbers(80, 10.0)], [_numbers(80, 12.0)])
    assert waste["completion_ok"] and not waste["wasted_ok"]
    tiny = compare([_numbers(80, 0.10)], [_numbers(80, 0.05)])
    assert tiny["wasted_ok"]  # within one job's length: a single near miss
    assert RATE_TOLERANCE == 0.05 and WASTE_TOLERANCE == 0.15


def test_bad_replications_name_their_flag() -> None:
    with pytest.raises(SimError, match="--replications"):
        run_calibration(CALIBRATION_DEFAULTS, ["sidekiq"], replications=0)
    with pytest.raises(SimError, match="--strategy"):
        run_calibration(CALIBRATION_DEFAULTS, ["sidekick"])


@pytest.fixture(scope="module")
def calibration() -> dict:
    config = CALIBRATION_DEFAULTS
    one = run_calibration(config, ONE_RUN)
    two = run_calibration(config, TWO_RUNS, replications=2)
    return {**one, "strategies": {**one["strategies"], **two["strategies"]},
            "agree": one["agree"] and two["agree"]}


@pytest.mark.alone
def test_real_and_simulated_runs_agree(calibration: dict) -> None:
    json.dumps(calibration, allow_nan=False)
    table = format_calibration(calibration)
    for name in ONE_RUN + TWO_RUNS:
        r = calibration["strategies"][name]
        assert r["measured"]["sigkills"] >= 50, table
        assert r["completion_ok"], f"{name}: completion rates differ\n{table}"
        assert r["wasted_ok"], f"{name}: wasted work differs\n{table}"
    assert calibration["agree"]


@pytest.mark.alone
def test_calibration_shows_the_real_systems_losses(calibration: dict) -> None:
    s = calibration["strategies"]
    for side in ("real", "sim"):
        assert s["sidekiq"][side]["lost"] > 0
        assert s["celery"][side]["lost"] > 0
        assert s["resque"][side]["failed"] > 0
        assert s["resumable"][side]["lost"] == 0
        assert s["resumable"][side]["completion_rate"] == 1.0
    assert np.isclose(s["resumable"]["real"]["completion_rate"], 1.0)


@pytest.mark.alone
def test_format_calibration_sets_numbers_side_by_side(calibration: dict) -> None:
    text = format_calibration(calibration)
    for name in ONE_RUN + TWO_RUNS:
        assert name in text
    assert "real / simulated" in text
