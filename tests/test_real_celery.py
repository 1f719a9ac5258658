"""Celery 5.7 run for real (``celery worker``, prefork pool, ``-c 1``, on a real Redis through
kombu's Redis transport), killed as a platform kills it, and the ``celery`` model built from the
same settings.

A warm shutdown lets the task in hand finish, so only tasks longer than the rest of the grace
are killed. The runs' schedule is seeded: with ``deploy_every`` 12 s and seed 5 the first deploy
comes 4.8 s in, when each of the two workers is 0.8 s into its second 4 s job, so the SIGKILL
1.5 s later finds both jobs running. Acknowledged at start (the default), they are lost and the
messages the workers had reserved stay unacknowledged for the whole run (the scaled visibility
timeout is 180 s); with ``acks_late`` and a 5 s visibility timeout (longer than a job, so that no
job in hand is redelivered while it runs) a replacement's sweep redelivers both and every job
completes. The real runs take 15-20 s each.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import pytest

from deploysim.sim.chaos import ChaosConfig
from deploysim.sim.chaos.real.apps.celery_app import kombu_url
from deploysim.sim.chaos.real.harness import run_system
from deploysim.sim.chaos.real.systems import get_system
from deploysim.sim.chaos.real.systems.base import RunContext
from deploysim.sim.chaos.real.systems.celery import (
    CeleryAcksLateSystem,
    CelerySystem,
    _message_id,
)
from deploysim.strategies.base import Lose, Requeue, StrategyError
from deploysim.strategies.celery import Celery

#: Two workers, six jobs of 4 s (10 items of 0.4 s), deploys 4.8 s and 16.8 s in.
KILLED_MID_JOB = {"workers": 2, "jobs": 6, "items": 10, "item_time": "0.4s",
                  "deploy_every": "12s", "grace": "1.5s", "crash_every": 0, "seed": 5}


def _context(settings: dict[str, Any], socket: str = "/tmp/redis.sock") -> RunContext:
    return RunContext(workdir=os.path.dirname(socket), redis_socket=socket,
                      broker_url=f"unix://{socket}?db=0", results_url=f"unix://{socket}?db=1",
                      jobs=1, items=20, item_time=0.1, grace=1.5, settings=settings)


# -- the model and the settings, without Celery running ---------------------------------------


def test_model_defaults_are_celerys_on_redis() -> None:
    model = Celery()
    assert model.term_wait == math.inf
    assert model.on_kill == Lose("acknowledged at start, worker killed")
    assert model.prefetch == 4 and Celery(acks_late=True).prefetch == 3
    assert Celery(disable_prefetch=True).prefetch == 0
    assert model.exit_time == 2.2 and Celery(pool="threads").exit_time == 0.5
    # due after the visibility timeout, swept half of 10 s x 10 later on average, to the front
    late = Requeue(delay=3600.0 + 50.0, end="front", restart=True)
    assert Celery(acks_late=True).on_kill == late
    assert model.on_kill_reserved == late
    assert model.on_exit_reserved == Requeue(0.0, "front")
    # RabbitMQ: back at once, to its place in the queue (seen on 3.10); SQS not checked
    rabbit = Celery(acks_late=True, broker="rabbitmq")
    assert rabbit.on_kill == Requeue(0.0, "front") == rabbit.on_kill_reserved
    assert Celery(acks_late=True, broker="sqs").on_kill.end == "back"
    # acks_late's acknowledgement lags the task's end in the prefork pool, not at the start
    assert rabbit.ack_delay == (0.1, 0.35) and model.ack_delay == (0.0, 0.0)
    assert Celery(acks_late=True, pool="solo").ack_delay == (0.0, 0.0)
    assert Celery.from_params({"exit_time": 0}).exit_time == 0.0
    with pytest.raises(StrategyError, match="prefetch_multiplier"):
        Celery(prefetch_multiplier=0)


def test_soft_shutdown_applies_only_to_a_cold_shutdown() -> None:
    # worker_soft_shutdown_timeout is a stage of the cold shutdown: SIGTERM is warm unless
    # the worker runs with REMAP_SIGTERM=SIGQUIT
    assert Celery(soft_shutdown_timeout=10).term_wait == math.inf
    cold = Celery(soft_shutdown_timeout=10, remap_sigterm=True)
    assert cold.term_wait == 10.0 and isinstance(cold.on_timeout, Lose)
    late = Celery(soft_shutdown_timeout=10, remap_sigterm=True, acks_late=True)
    assert late.on_timeout == Requeue(0.0, "back")


def test_settings_scale_celerys_durations() -> None:
    system = CelerySystem()
    real = system.settings(1.0, 30.0)
    assert (real["visibility_timeout"], real["unacked_restore_interval"],
            real["unacked_restore_throttle"], real["unacked_mutex_expire"]) == (3600, 10, 10, 300)
    settings = system.settings(0.05, 1.5)
    assert settings["visibility_timeout"] == pytest.approx(180.0)
    assert settings["unacked_restore_interval"] == pytest.approx(0.5)
    assert settings["unacked_restore_throttle"] == 10  # a count, not scaled
    assert settings["exit_time"] == 2.2  # a cost of the process, not scaled
    assert settings["acks_late"] is False and CeleryAcksLateSystem().settings(0.05, 1.5)[
        "acks_late"] is True
    json.dumps(settings)
    model = system.strategy(settings)
    assert model.on_kill_reserved == Requeue(180.0 + 2.5, "front")
    assert model.exit_time == 2.2 and model.prefetch == 4
    argv = system.worker(_context(settings), 2, 3).argv
    assert argv[argv.index("--concurrency") + 1] == "1"
    assert argv[argv.index("--pool") + 1] == "prefork"
    assert argv[argv.index("--hostname") + 1] == "deploysim-2.3@%h"


def test_urls_and_messages_are_read_as_kombu_writes_them() -> None:
    assert kombu_url("unix:///run/r.sock?db=0") == "redis+socket:///run/r.sock?virtual_host=0"
    assert kombu_url("unix:///run/r.sock?db=0", 2) == "redis+socket:///run/r.sock?virtual_host=2"
    message = {"headers": {"id": "deploysim-7"}, "body": ""}
    assert _message_id(json.dumps(message).encode()) == 7
    assert _message_id(json.dumps([message, "", "celery"]).encode()) == 7  # the unacked hash
    assert _message_id(b"{}") is None and _message_id(b"not json") is None


# -- real runs ----------------------------------------------------------------------------------


def test_a_task_killed_by_the_platform_is_lost(need_system: Any) -> None:
    need_system("celery")
    audit = run_system(ChaosConfig.from_args(**KILLED_MID_JOB, duration="15s"), "celery")
    assert audit["version"].startswith("5.")
    assert audit["sigkills"] >= 2
    # the two jobs in hand at the kill had been acknowledged: gone from every record
    assert audit["lost"] == 2 and audit["duplicate_item_executions"] == 0
    lost = [job for job, fate in audit["fates"].items() if fate == "lost"]
    assert all(job not in audit["bookkeeping"] for job in lost)
    # the messages reserved by the killed workers are still unacknowledged
    assert audit["pending"] >= 1
    assert set(audit["bookkeeping"].values()) <= {"held", "queued"}
    assert audit["completed"] + audit["lost"] + audit["pending"] == audit["enqueued"]


def test_acks_late_redelivers_a_killed_task(need_system: Any) -> None:
    need_system("celery-acks-late")
    # a visibility timeout that fits the run, and one message at a time (nothing reserved)
    audit = run_system(ChaosConfig.from_args(**KILLED_MID_JOB, duration="30s"),
                       "celery-acks-late",
                       settings={"visibility_timeout": 5.0, "prefetch_multiplier": 1})
    assert audit["settings"]["visibility_timeout"] == 5.0
    assert audit["sigkills"] >= 2
    # the killed jobs ran again from their first item and completed
    assert audit["completed"] == audit["enqueued"] == 6
    assert audit["lost"] == 0 and audit["pending"] == 0
    assert audit["duplicate_item_executions"] > 0


# -- on RabbitMQ ---------------------------------------------------------------------------------


def test_on_rabbitmq_the_task_in_hand_is_lost_and_the_reserved_come_back_at_once(
        need_system: Any) -> None:
    """Acknowledged at its start, the task a SIGKILL finds is gone on RabbitMQ as on Redis; the
    messages the worker had reserved go back to the queue the moment its connection dies, with
    no visibility timeout, and the replacements run them."""
    need_system("celery-rabbitmq")
    audit = run_system(ChaosConfig.from_args(**KILLED_MID_JOB, duration="25s"),
                       "celery-rabbitmq")
    assert audit["sigkills"] >= 2
    assert audit["lost"] == 2 and audit["duplicate_item_executions"] == 0
    assert audit["completed"] == audit["enqueued"] - 2 and audit["pending"] == 0
    assert audit["bookkeeping"] == {}


def test_on_rabbitmq_an_acks_late_task_killed_comes_back_at_once(need_system: Any) -> None:
    """With acks_late the killed tasks are back at once (Redis waits for its visibility
    timeout) and run again from their first item."""
    need_system("celery-acks-late-rabbitmq")
    audit = run_system(ChaosConfig.from_args(**KILLED_MID_JOB, duration="35s"),
                       "celery-acks-late-rabbitmq")
    assert audit["sigkills"] >= 2
    assert audit["completed"] == audit["enqueued"] == 6
    assert audit["lost"] == 0 and audit["pending"] == 0
    assert audit["duplicate_item_executions"] > 0
    model = get_system("celery-acks-late-rabbitmq").strategy(audit["settings"])
    assert model.broker == "rabbitmq" and model.redelivery_delay == 0.0


# -- a message sent while the workers shut down ----------------------------------------------


def _idle_worker_swallows_a_message(tmp_path: Any, *, killed: bool) -> tuple[int, int] | None:
    """An idle acks-late worker (prefork, ``-c 1``) is sent SIGTERM; once it has cancelled its
    task consumer and while the BRPOP it sent before is still blocked in Redis, a task is sent.
    Then the worker is SIGKILLed (``killed``) or left to exit. Returns the task's messages in
    the queue and in the ``unacked`` hash right after it was sent and at the end; None when the
    BRPOP had already timed out before the task could be sent (nothing to swallow it)."""
    import time

    import redis

    from deploysim.sim.chaos.real.apps.celery_app import TASK, make_app
    from deploysim.sim.chaos.real.containers import Container
    from deploysim.sim.chaos.real.redis_server import RedisServer

    system = CeleryAcksLateSystem()
    settings = system.configure(system.settings(0.05, 1.5), {"prefetch_multiplier": 1})
    with RedisServer(tmp_path / "redis") as server:
        broker, results = server.url(0), server.url(1)
        env = {"DEPLOYSIM_BROKER": broker, "DEPLOYSIM_RESULTS": results,
               "DEPLOYSIM_SETTINGS": json.dumps(settings), "DEPLOYSIM_CONTAINER": "0.1",
               "PYTHONUNBUFFERED": "1"}
        command = system.worker(_context(settings, server.socket), 0, 1)
        argv = [*command.argv[:-1], "DEBUG"]  # the consumer's cancel is logged at DEBUG
        log = tmp_path / "worker.log"
        container = Container(argv, env, log, str(tmp_path))
        client = redis.Redis.from_url(broker)
        app = make_app(broker, settings, results)
        try:
            deadline = time.monotonic() + 30
            while b" ready." not in log.read_bytes():
                assert time.monotonic() < deadline and container.alive(), log.read_text()
                time.sleep(0.05)
            container.term()
            while b"Canceling task consumer" not in log.read_bytes():
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.01)
            blocked = [c for c in client.client_list() if "b" in c["flags"]]
            if not blocked:
                return None
            app.tasks[TASK].apply_async((0, 1, 0.01), task_id="deploysim-0")
            sent = (client.llen("celery"), client.hlen("unacked"))
            if sent == (1, 0):  # the BRPOP timed out meanwhile
                return None
            if killed:
                container.kill()
            else:
                container.process.wait(timeout=30)
            return sent, (client.llen("celery"), client.hlen("unacked"))
        finally:
            container.kill()  # whatever is left of it, and its cgroup
            app.close()
            client.close()


@pytest.mark.parametrize("killed", [True, False], ids=["killed", "exits"])
def test_a_worker_shutting_down_swallows_a_message_its_exit_gives_back(
        need_system: Any, tmp_path: Any, killed: bool) -> None:
    # kombu 5.7's Redis transport: the BRPOP sent before the consumer was cancelled stays
    # blocked in Redis for up to a second; a message sent then is popped into the worker's
    # socket, and only its channel's close (2.0 s after SIGTERM for an idle prefork worker)
    # reads it and puts it back. A platform's SIGKILL before that loses it.
    need_system("celery-acks-late")
    for attempt in range(5):
        seen = _idle_worker_swallows_a_message(tmp_path / str(attempt), killed=killed)
        if seen is not None:
            break
    assert seen is not None, "the worker's BRPOP never outlived its consumer's cancel"
    sent, end = seen
    assert sent == (0, 0)  # in no record of Redis's: in the worker's socket
    assert end == ((0, 0) if killed else (1, 0))
