"""Each strategy's row of docs/semantics.md, pinned on small deterministic fleets: explicit arrival,
length, deploy, restart and crash times, and the exact times and counts that row implies.

Unless a test says otherwise a job of L seconds holds L items of 1 s, so item boundaries fall
on whole seconds and the times below can be checked by hand.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import simpy

from deploysim.sim.fleet.ledger import Ledger
from deploysim.sim.fleet.results import summarize
from deploysim.sim.fleet.simulation import CountingEnvironment, FleetSim, scheduled_events
from deploysim.sim.fleet.work import Draws
from deploysim.strategies.base import Strategy, StrategyError
from deploysim.strategies.celery import Celery
from deploysim.strategies.resque import Resque
from deploysim.strategies.resumable_model import Resumable
from deploysim.strategies.sidekiq import Sidekiq
from deploysim.strategies.split import Split


@dataclass(frozen=True)
class Job:
    """One job of the fleet: when it arrives, how long it runs, its items, whether it hangs."""

    at: float
    length: float
    items: int | None = None  # default: one item per second
    hangs: bool = False


@dataclass
class Run:
    """A finished run: its RESULT, its ledger's per-job arrays and its deploy records."""

    result: dict[str, Any]
    ledger: Ledger

    def __getitem__(self, key: str) -> Any:
        return self.result[key]

    def per_job(self, key: str) -> list[float]:
        """One per-job record (``done_t``, ``fail_t``, ``first_start``, ``item_execs``...)."""
        return self.ledger.arrays()[key].tolist()


def simulate(
    strategy: Strategy,
    jobs: list[Job],
    *,
    workers: int = 1,
    grace: float = 30.0,
    restart_delay: float = 0.0,
    deploys: tuple[float, ...] = (),
    horizon: float = 20_000.0,
    batch_size: int | None = None,
    restarts: list[list[float]] | None = None,
    crashes: list[list[float]] | None = None,
) -> Run:
    """Run ``strategy`` over the given jobs, deploys, platform restarts and crashes."""
    draws = Draws(
        arrivals=np.array([j.at for j in jobs], dtype=float),
        lengths=np.array([j.length for j in jobs], dtype=float),
        items=np.array([j.items or round(j.length) for j in jobs], dtype=np.int64),
        hangs=np.array([j.hangs for j in jobs], dtype=bool),
        deploys=np.array(deploys, dtype=float),
        restarts=[np.array(r, dtype=float) for r in restarts or []],
        crashes=[np.array(c, dtype=float) for c in crashes or []],
    )
    sim = FleetSim(
        strategy,
        draws,
        workers=workers,
        restart_delay=restart_delay,
        grace=grace,
        horizon=horizon,
        batch_size=batch_size,
    )
    ledger = sim.run()
    result = summarize(ledger)
    assert result["enqueued"] == (
        result["completed"] + result["failed"] + result["lost"] + result["pending"]
    )
    assert result["explicitly_lost"] == result["lost"]
    return Run(result, ledger)


def approx(value: float) -> Any:
    """Simulated times carry the engine's 1e-9 s nudges and float sums of item times."""
    return pytest.approx(value, abs=1e-6)


# -- Sidekiq OSS --------------------------------------------------------------------------------


def test_sidekiq_puts_a_timed_out_job_back_at_the_front_to_start_over() -> None:
    # SIGTERM at 50; the 25 s timeout ends at 75 with 75 of job A's items done; the worker is
    # back at 80 and fetches A before B and C, from its first item
    jobs = [Job(0, 100), Job(1, 10), Job(2, 10)]
    run = simulate(Sidekiq(), jobs, restart_delay=5, deploys=(50,))
    assert run.per_job("done_t") == [approx(180), approx(190), approx(200)]
    assert run["completed"] == 3 and run["hard_kills"] == 0
    assert run["executions"] == 4
    assert run["duplicate_item_executions"] == 75
    assert run["wasted_work_s"] == approx(75)
    assert run["drain_s"]["max"] == approx(25)


def test_sidekiq_requeue_back_lets_the_waiting_jobs_go_first() -> None:
    jobs = [Job(0, 100), Job(1, 10), Job(2, 10)]
    run = simulate(Sidekiq(requeue="back"), jobs, restart_delay=5, deploys=(50,))
    assert run.per_job("done_t") == [approx(200), approx(90), approx(100)]
    assert run["duplicate_item_executions"] == 75


def test_sidekiq_timeout_is_a_parameter() -> None:
    run = simulate(Sidekiq(timeout=8), [Job(0, 100)], deploys=(50,))
    assert run["drain_s"]["max"] == approx(8)
    assert run.per_job("done_t") == [approx(158)]
    assert run["duplicate_item_executions"] == 58


def test_sidekiq_basic_fetch_loses_a_job_killed_when_the_grace_ends_first() -> None:
    # grace 10 < timeout 25: SIGKILL at 60 with the job in hand
    run = simulate(Sidekiq(), [Job(0, 100), Job(1, 10)], grace=10, deploys=(50,))
    assert run["hard_kills"] == 1
    assert run["lost"] == run["explicitly_lost"] == 1
    assert run.per_job("lost_t")[0] == approx(60)
    assert run.per_job("done_t")[1] == approx(70)


def test_sidekiq_basic_fetch_loses_a_job_whose_worker_crashes() -> None:
    run = simulate(Sidekiq(), [Job(0, 100)], crashes=[[30]])
    assert run["crashes"] == 1 and run["hard_kills"] == 0
    assert run["lost"] == run["explicitly_lost"] == 1


def test_reliable_fetch_recovers_an_orphan_at_a_start_up_after_its_heartbeat_expired() -> None:
    # the worker's start-up at 0 ran the hourly orphan check. The job starts at 3650 and its
    # worker crashes at 3700 with 50 items done; the new process starts at 3760, exactly
    # heartbeat_ttl (60 s) after the crash, may check again (3760 >= 0 + 3600) and recovers
    # the job, which runs again from scratch
    run = simulate(Sidekiq(fetch="reliable"), [Job(3650, 100)], restart_delay=60, crashes=[[3700]])
    assert run["lost"] == 0 and run["crashes"] == 1
    assert run.per_job("done_t") == [approx(3860)]
    assert run["duplicate_item_executions"] == 50
    assert run["executions"] == 2


def test_reliable_fetch_waits_for_the_heartbeat_and_checks_at_most_once_an_hour() -> None:
    # crash at 3700, new process at 3705: too early for the heartbeat (3700 + 60), and that
    # start-up used the hourly check. Deploys at 3900 and 7200 bring start-ups before
    # 3705 + 3600 = 7305, which may not check; the start-up after the deploy at 7400 does
    jobs = [Job(3650, 100)]
    run = simulate(
        Sidekiq(fetch="reliable"),
        jobs,
        restart_delay=5,
        crashes=[[3700]],
        deploys=(3900, 7200, 7400),
    )
    assert run.per_job("done_t") == [approx(7405 + 100)]
    assert run["duplicate_item_executions"] == 50
    # without a start-up late enough the orphan is still held, not lost
    early = simulate(
        Sidekiq(fetch="reliable"), jobs, restart_delay=5, crashes=[[3700]], deploys=(3900, 7200)
    )
    assert early["pending"] == 1 and early["lost"] == 0 and early["completed"] == 0


def test_reliable_fetch_parameters_move_the_recovery() -> None:
    fast = Sidekiq(fetch="reliable", heartbeat_ttl=10, recovery_every=60)
    run = simulate(fast, [Job(100, 100)], restart_delay=10, crashes=[[150]])
    assert run.per_job("done_t") == [approx(160 + 100)]


# -- Resque ---------------------------------------------------------------------------------------


def test_resque_quit_waits_for_a_long_job_when_the_grace_allows() -> None:
    run = simulate(Resque(), [Job(0, 1000)], grace=1e6, deploys=(100,))
    assert run["completed"] == 1 and run["hard_kills"] == 0
    assert run.per_job("done_t") == [approx(1000)]
    assert run["drain_s"]["max"] == approx(900)
    assert run["executions"] == 1


def test_resque_quit_job_goes_to_the_failed_queue_on_the_platforms_sigkill() -> None:
    run = simulate(Resque(), [Job(0, 1000)], grace=30, deploys=(100,))
    assert run["hard_kills"] == 1
    assert run["failed"] == 1 and run["lost"] == 0
    assert run.per_job("fail_t") == [approx(130)]
    assert run["drain_s"]["max"] == approx(30)


def test_resque_term_kills_the_job_after_four_seconds() -> None:
    run = simulate(Resque(mode="term"), [Job(0, 1000)], grace=30, deploys=(100,))
    assert run["hard_kills"] == 0
    assert run.per_job("fail_t") == [approx(104)]
    assert run["drain_s"]["max"] == approx(4)


def test_resque_retry_plugin_requeues_a_killed_job_to_start_over() -> None:
    run = simulate(
        Resque(mode="term", on_kill_action="requeue"),
        [Job(0, 1000)],
        restart_delay=5,
        deploys=(100,),
    )
    assert run["failed"] == 0
    assert run.per_job("done_t") == [approx(109 + 1000)]
    assert run["duplicate_item_executions"] == 104


def test_a_crashed_resque_job_fails() -> None:
    run = simulate(Resque(), [Job(0, 1000)], crashes=[[10]])
    assert run["failed"] == 1 and run["crashes"] == 1


# -- Celery ---------------------------------------------------------------------------------------


def test_celery_warm_shutdown_waits_then_a_sigkill_loses_the_acked_task() -> None:
    run = simulate(Celery(), [Job(0, 1000), Job(0, 10)], grace=30, deploys=(100,))
    assert run["hard_kills"] == 1
    assert run["lost"] == run["explicitly_lost"] == 1
    assert run.per_job("lost_t")[0] == approx(130)
    # the second task was never started: it is still in the queue when the worker comes back
    assert run.per_job("done_t")[1] == approx(140)


def test_celery_warm_shutdown_lets_a_task_finish_within_the_grace() -> None:
    run = simulate(Celery(), [Job(0, 120)], grace=30, deploys=(100,))
    assert run["completed"] == 1 and run["hard_kills"] == 0
    # the task's 20 s, then the prefork pool's exit (Celery.exit_time, 2.2 s)
    assert run["drain_s"]["max"] == approx(20 + 2.2)


def test_an_idle_celery_prefork_worker_is_killed_by_a_short_grace() -> None:
    # the pool takes 2.2 s to exit: a 1.5 s grace ends in a SIGKILL, with nothing in hand
    run = simulate(Celery(), [Job(0, 10)], grace=1.5, deploys=(100,))
    assert run["completed"] == 1 and run["hard_kills"] == 1
    assert simulate(Celery(pool="threads"), [Job(0, 10)], grace=1.5,
                    deploys=(100,))["hard_kills"] == 0


def test_celery_acks_late_on_redis_is_redelivered_after_the_visibility_timeout() -> None:
    run = simulate(Celery(acks_late=True), [Job(0, 1000)], grace=30, deploys=(100,))
    assert run["lost"] == 0
    # redelivered once unacked for the visibility timeout, at the next sweep: on average half
    # of kombu's 100 s restore period later
    assert run.per_job("done_t") == [approx(130 + 3600 + 50 + 1000)]
    assert run["duplicate_item_executions"] == 130
    assert run["executions"] == 2


def test_celery_acks_late_on_rabbitmq_is_redelivered_at_once() -> None:
    run = simulate(
        Celery(acks_late=True, broker="rabbitmq"),
        [Job(0, 1000)],
        grace=30,
        restart_delay=5,
        deploys=(100,),
    )
    assert run.per_job("done_t") == [approx(135 + 1000)]
    assert run["duplicate_item_executions"] == 130


def test_celery_time_limit_fails_a_long_task() -> None:
    run = simulate(Celery(time_limit=300), [Job(0, 1000), Job(0, 10)])
    assert run["failed"] == 1
    assert run.per_job("fail_t")[0] == approx(300)
    assert run.per_job("done_t")[1] == approx(310)
    soft = simulate(Celery(time_limit=300, soft_time_limit=200), [Job(0, 1000)])
    assert soft.per_job("fail_t") == [approx(200)]


def test_celery_soft_shutdown_ends_in_a_cold_stage_with_the_kill_outcome() -> None:
    # the soft shutdown is a stage of the cold shutdown: SIGTERM starts it only remapped
    run = simulate(Celery(soft_shutdown_timeout=10, remap_sigterm=True), [Job(0, 1000)],
                   deploys=(100,))
    assert run["hard_kills"] == 0
    assert run.per_job("lost_t") == [approx(110)]
    warm = simulate(Celery(soft_shutdown_timeout=10), [Job(0, 1000)], deploys=(100,))
    assert warm["hard_kills"] == 1 and warm.per_job("lost_t") == [approx(130)]


# -- splitting ---------------------------------------------------------------------------------


def test_a_split_job_completes_across_deploys_with_at_most_a_sub_job_wasted_per_deploy() -> None:
    # 1000 items in sub-jobs of 100; a deploy every 250 s: Sidekiq's whole job (L > P + 25)
    # never completes, the split one does, each deploy costing at most one sub-job's work
    deploys = tuple(50.0 + 250 * k for k in range(20))
    jobs = [Job(0, 1000)]
    split = simulate(Split(chunk_items=100), jobs, restart_delay=5, deploys=deploys, horizon=5000)
    assert split["completed"] == 1
    done = split.per_job("done_t")[0]
    hit = sum(1 for t in deploys if t < done)
    assert 0 < split["duplicate_item_executions"] <= 100 * hit
    assert split["wasted_work_s"] <= 100 * hit
    whole = simulate(Sidekiq(), jobs, restart_delay=5, deploys=deploys, horizon=5000)
    assert whole["completed"] == 0 and whole["pending"] == 1


def test_a_split_job_is_complete_only_when_every_sub_job_is() -> None:
    run = simulate(Split(chunk_items=30), [Job(0, 100)], workers=2)
    # sub-jobs of 30, 30, 30 and 10 items on two workers: 0-30, 0-30, 30-60, 30-40
    assert run.per_job("done_t") == [approx(60)]
    assert run["executions"] == 4
    assert run.per_job("unique_items") == [100]


# -- resumable ----------------------------------------------------------------------------------


def test_resumable_stops_at_the_next_item_boundary_and_resumes_from_its_cursor() -> None:
    # SIGTERM at 50.5 in item 50 (50-51): the job stops at 51, the worker is back at 56 and
    # goes on with item 51
    run = simulate(Resumable(), [Job(0, 100)], restart_delay=5, deploys=(50.5,))
    assert run["drain_s"]["max"] == approx(0.5)
    assert run.per_job("done_t") == [approx(105)]
    assert run["duplicate_item_executions"] == 0
    assert run.per_job("item_execs") == [100]
    assert run["executions"] == 2 and run["hard_kills"] == 0
    assert run["wasted_work_s"] == approx(0)


def test_resumable_drain_is_at_most_an_item_and_a_checkpoint() -> None:
    # with 0.5 s checkpoints every 5 s, items run 49.5-50.5: SIGTERM at 50.3 is seen at 50.5
    # and the cursor is durable at 51
    run = simulate(Resumable(checkpoint_cost=0.5), [Job(0, 300)], deploys=(50.3,))
    assert run["drain_s"]["max"] == approx(0.7)
    for deploy in (50.3, 50.9, 53.0, 54.2, 200.0):
        run = simulate(
            Resumable(checkpoint_cost=0.5), [Job(0, 300)], restart_delay=5, deploys=(deploy,)
        )
        # worst case: SIGTERM lands as a periodic write starts; that write, the next item,
        # then the interrupt's own write
        assert 0 < run["drain_s"]["max"] <= 0.5 + 1 + 0.5 + 1e-9
        assert run["completed"] == 1 and run["duplicate_item_executions"] == 0
        assert run["hard_kills"] == 0


def test_an_interrupted_resumable_job_goes_to_the_back() -> None:
    jobs = [Job(0, 100), Job(0.1, 10)]
    back = simulate(Resumable(), jobs, restart_delay=5, deploys=(50.5,))
    assert back.per_job("done_t") == [approx(115), approx(66)]
    front = simulate(Resumable(requeue="front"), jobs, restart_delay=5, deploys=(50.5,))
    assert front.per_job("done_t") == [approx(105), approx(115)]


def test_resumable_resumes_after_a_crash_from_its_last_checkpoint_on_its_own_worker() -> None:
    # checkpoints every 5 s: the one at 50 is the last before the crash at 52.5, so items 50
    # and 51 run twice and item 52, cut short, once; the worker is back at 57.5, while it
    # still holds the job's lease (until 50 + 60), and takes the job back at once
    run = simulate(Resumable(), [Job(0, 100)], restart_delay=5, crashes=[[52.5]])
    assert run.per_job("done_t") == [approx(57.5 + 50)]
    assert run["duplicate_item_executions"] == 2
    assert run["lost"] == 0 and run["crashes"] == 1


def test_a_worker_restarting_at_once_takes_its_resumable_job_back() -> None:
    run = simulate(Resumable(), [Job(0, 100)], restart_delay=0, crashes=[[52.5]])
    assert run.per_job("done_t") == [approx(52.5 + 50)]


def test_resumable_job_of_a_dead_worker_goes_to_another_when_its_lease_expires() -> None:
    # worker 0 crashes at 52.5 and stays down; the lease renewed by the checkpoint at 50
    # expires at 110, when the idle worker 1 takes the job from item 50
    run = simulate(Resumable(), [Job(0, 100)], workers=2, restart_delay=1000, crashes=[[52.5], []])
    assert run.per_job("done_t") == [approx(110 + 50)]
    assert run["duplicate_item_executions"] == 2


def test_resumable_lease_ttl_bounds_the_checkpoint_interval() -> None:
    # checkpoints renew the lease, so an interval over half the lease is refused, by name
    with pytest.raises(StrategyError, match="checkpoint_every: 60 s is more than half of "
                                            r"lease_ttl \(20 s\).*at least 120 s"):
        Resumable(checkpoint_every=60, lease_ttl=20)
    # checkpoints every 10 s: the crash at 35.5 loses items 30..34 only, and the job waits
    # for its lease (30 + 20)
    run = simulate(
        Resumable(checkpoint_every=10, lease_ttl=20),
        [Job(0, 100)],
        workers=2,
        restart_delay=1000,
        crashes=[[35.5], []],
    )
    assert run["duplicate_item_executions"] == 5
    assert run.per_job("done_t") == [approx(50 + 70)]


def test_resumable_max_runtime_makes_long_jobs_take_turns() -> None:
    # two jobs of 100 items on one worker, 30 s at a time, each back to the end of the queue
    run = simulate(Resumable(max_runtime=30), [Job(0, 100), Job(0, 100)])
    assert run.per_job("done_t") == [approx(190), approx(200)]
    assert run["executions"] == 8
    assert run["duplicate_item_executions"] == 0


def test_resumable_checkpoint_cost_is_paid_in_worker_time() -> None:
    # checkpoints of 0.5 s are due after every 5 s of work: at 5, 10.5 and 16; the one due
    # after the last item is the completion's own write, not a second one
    run = simulate(Resumable(checkpoint_cost=0.5), [Job(0, 20)])
    assert run.per_job("done_t") == [approx(20 + 4 * 0.5)]
    assert run["wasted_work_s"] == approx(4 * 0.5)


# -- deploys and the platform -------------------------------------------------------------------


def test_rolling_deploy_signals_batches_one_after_another() -> None:
    # four workers busy with long Sidekiq jobs: each batch takes the 25 s timeout to drain
    jobs = [Job(0, 1000)] * 4
    rolling = simulate(Sidekiq(), jobs, workers=4, deploys=(100,), batch_size=2)
    at_once = simulate(Sidekiq(), jobs, workers=4, deploys=(100,))
    assert at_once["drain_s"]["max"] == approx(25)
    assert rolling["drain_s"]["max"] == approx(50)
    three = simulate(Sidekiq(), jobs, workers=4, deploys=(100,), batch_size=1)
    assert three["drain_s"]["max"] == approx(100)


def test_rolling_deploy_of_resumable_workers_stops_each_batch_at_an_item_boundary() -> None:
    jobs = [Job(0, 1000)] * 4
    run = simulate(Resumable(checkpoint_cost=0.2), jobs, workers=4, deploys=(100.5,), batch_size=2)
    assert run["hard_kills"] == 0 and run["duplicate_item_executions"] == 0
    # each batch drains within an item and two checkpoint writes
    assert 0 < run["drain_s"]["max"] <= 2 * (1 + 2 * 0.2) + 1e-9
    assert run["completed"] == 4


def test_a_hung_job_holds_its_worker_until_the_sigkill() -> None:
    # Resque waits however long: the hung job keeps the only worker until SIGKILL at 130
    run = simulate(Resque(), [Job(0, 50, hangs=True), Job(1, 10)], deploys=(100,), grace=30)
    assert run["hard_kills"] == 1
    assert run.per_job("fail_t")[0] == approx(130)
    assert run.per_job("first_start")[1] == approx(130)
    assert run.per_job("done_t")[1] == approx(140)
    assert run["hung_time_s"] == approx(130)


def test_a_hung_resumable_job_is_stuck_on_its_middle_item_until_the_sigkill() -> None:
    # it hangs in item 50 (from 50 s) and never reaches an item boundary for the SIGTERM
    run = simulate(Resumable(), [Job(0, 100, hangs=True)], deploys=(100,), horizon=135)
    assert run["hard_kills"] == 1
    assert run["hung_time_s"] == approx(130 - 50)
    assert run["completed"] == 0 and run["pending"] == 1 and run["lost"] == 0


def test_a_hung_job_with_no_deploy_holds_its_worker_to_the_horizon() -> None:
    run = simulate(Sidekiq(), [Job(0, 50, hangs=True), Job(1, 10)], horizon=1000)
    assert run["pending"] == 2 and run["completed"] == 0
    assert math.isnan(run.per_job("first_start")[1])


def test_platform_daily_restarts_hard_kill_long_jobs_like_deploys() -> None:
    run = simulate(Resque(), [Job(0, 1000)], restarts=[[500]], grace=30)
    assert run["hard_kills"] == 1 and run["deploys"] == 0
    assert run.per_job("fail_t") == [approx(530)]
    celery = simulate(Celery(), [Job(0, 1000)], restarts=[[500]], grace=30)
    assert celery["lost"] == 1 and celery["hard_kills"] == 1
    # Sidekiq's own 25 s timeout beats Heroku's 30 s grace: no kill, the job starts over
    sidekiq = simulate(Sidekiq(), [Job(0, 1000)], restarts=[[500]], grace=30)
    assert sidekiq["hard_kills"] == 0
    assert sidekiq.per_job("done_t") == [approx(525 + 1000)]


def test_a_restart_only_stops_its_own_worker() -> None:
    run = simulate(Resque(), [Job(0, 1000), Job(0, 1000)], workers=2, restarts=[[500], []])
    assert run["hard_kills"] == 1 and run["failed"] == 1 and run["completed"] == 1


# -- edge cases -----------------------------------------------------------------------------------


def test_a_job_completed_late_in_a_long_horizon_ran_all_its_items() -> None:
    start, length, items = 1947188.8932322175, 1349.6637821055876, 134966
    run = simulate(Celery(), [Job(start, length, items=items)], horizon=start + 2 * length)
    assert run["completed"] == 1
    assert run.per_job("unique_items") == [items]


def test_a_job_of_length_zero_completes_at_once() -> None:
    run = simulate(Sidekiq(), [Job(5, 0, items=1)])
    assert run.per_job("done_t") == [approx(5)]


# -- results ------------------------------------------------------------------------------------


def test_length_buckets_add_up_to_the_enqueued_jobs() -> None:
    lengths = [0.5, 2, 3, 5, 20, 40, 100, 1000, 3000]
    jobs = [Job(0, length, items=max(1, round(length))) for length in lengths]
    run = simulate(Celery(), jobs, workers=3, deploys=(500,), grace=30, horizon=2000)
    buckets = run["by_length"]
    assert sum(b["enqueued"] for b in buckets) == run["enqueued"] == len(lengths)
    assert sum(b["completed"] for b in buckets) == run["completed"]
    for b in buckets:
        inside = [x for x in lengths if b["lo_s"] <= x < b["hi_s"]]
        assert b["enqueued"] == len(inside)
        assert b["rate"] == approx(b["completed"] / b["enqueued"])
    # the long jobs are the ones the deploy's SIGKILL took
    assert [b["rate"] for b in buckets][-1] == 0.0
    assert buckets[0]["rate"] == 1.0


# -- events -------------------------------------------------------------------------------------


def _three_timeouts(env: simpy.Environment) -> Generator[simpy.Event, Any, None]:
    for _ in range(3):
        yield env.timeout(1)


def test_scheduled_events_counts_every_event_simpy_schedules() -> None:
    # the process's start, its three timeouts and its end: five events
    env = CountingEnvironment()
    env.process(_three_timeouts(env))
    env.run()
    assert scheduled_events(env) == 5
    with pytest.raises(TypeError, match="counting=True"):
        scheduled_events(simpy.Environment())


def test_a_fleet_counts_the_events_of_its_run() -> None:
    draws = Draws(arrivals=np.zeros(1), lengths=np.array([10.0]), items=np.array([10]),
                  hangs=np.zeros(1, dtype=bool), deploys=np.zeros(0))
    sim = FleetSim(Sidekiq(), draws, workers=1, restart_delay=0, grace=30, horizon=100,
                   counting=True)
    assert sim.events == 0
    sim.run()
    assert sim.events == scheduled_events(sim.env) > 0
