"""Strategies' parameters: Python values in (durations as seconds), text read only by the
scenario (a file, ``with_values``, ``--set``), names checked with a "did you mean" hint, and
``strategies`` standing on its own, without the simulator."""

import json
import math
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploysim.sim.errors import SimError
from deploysim.sim.fleet.replications import strategies_of
from deploysim.sim.scenario import (
    load_scenario,
    scenario_from_dict,
    scenario_to_dict,
    with_overrides,
    with_values,
)
from deploysim.strategies import STRATEGIES, make_strategy
from deploysim.strategies.base import StrategyError
from deploysim.strategies.celery import Celery
from deploysim.strategies.hints import did_you_mean
from deploysim.strategies.resque import Resque
from deploysim.strategies.sidekiq import Sidekiq
from deploysim.strategies.split import Split

MINIMAL = {
    "name": "minimal",
    "horizon": "1d",
    "deploys": {"schedule": "periodic", "every": "1h"},
    "workload": {"arrivals": "poisson", "rate": "60/h", "length": "30s"},
}

DURATIONS = {
    "sidekiq": ("timeout", "heartbeat_ttl", "recovery_every", "shutdown_poll"),
    "resque": ("term_timeout",),
    "celery": ("visibility_timeout", "restore_every", "soft_shutdown_timeout", "exit_time",
               "time_limit", "soft_time_limit"),
    "rq": ("job_timeout", "job_monitoring_interval", "maintenance_interval", "heartbeat_slack",
           "exit_time"),
    "dramatiq": ("worker_shutdown_timeout", "heartbeat_timeout", "worker_timeout"),
    "split": ("timeout", "heartbeat_ttl", "recovery_every", "shutdown_poll"),
    "resumable": ("checkpoint_every", "checkpoint_cost", "max_runtime", "lease_ttl"),
}


def scenario(strategies):
    return scenario_from_dict({**MINIMAL, "strategies": strategies}, "t")


# -- layers -----------------------------------------------------------------------------------


def test_strategies_never_import_the_simulator():
    code = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        import deploysim.strategies as package
        names = [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
        for name in names:
            importlib.import_module(name)
        assert len(names) > 10, names
        leaked = sorted(m for m in sys.modules if m.split(".")[:2] == ["deploysim", "sim"])
        assert not leaked, leaked
        print(len(names))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


# -- durations are seconds ----------------------------------------------------------------------


def test_every_strategy_declares_its_durations():
    assert {name: cls.duration_params() for name, cls in STRATEGIES.items()} == DURATIONS


@pytest.mark.parametrize(("name", "key"), [(n, k) for n, keys in DURATIONS.items() for k in keys])
def test_a_duration_is_seconds_as_a_number(name, key):
    params = {"lease_ttl": 1e6} if name == "resumable" else {}
    built = make_strategy(name, {**params, key: 250})
    value = built.params()[key]
    assert value == 250.0
    assert isinstance(value, float)
    with pytest.raises(StrategyError) as info:
        make_strategy(name, {**params, key: "25s"})
    assert str(info.value) == (
        f"strategies.{name}.{key}: '25s' is text; give seconds as a number"
    )
    for bad in (-1, True, [1], float("nan")):
        with pytest.raises(StrategyError, match=rf"^strategies\.{name}\.{key}: .* is not a dur"):
            make_strategy(name, {**params, key: bad})


def test_text_is_refused_when_a_strategy_is_built_directly():
    with pytest.raises(StrategyError, match=r"^timeout: '25s' is text; give seconds as a number$"):
        Sidekiq(timeout="25s")  # type: ignore[arg-type]
    assert Sidekiq(timeout=0).timeout == 0.0
    assert make_strategy("sidekiq", {"timeout": 0}).term_wait == 0.0
    assert math.isinf(Sidekiq(timeout=math.inf).term_wait)


def test_unset_durations_stay_unset_or_take_the_brokers_default():
    celery = Celery()
    assert celery.time_limit is None
    assert math.isinf(celery.run_limit)
    assert celery.visibility_timeout == 3600.0
    assert Celery(broker="rabbitmq").visibility_timeout == 0.0
    assert Celery(time_limit=60, soft_time_limit=30).run_limit == 30.0


def test_text_in_a_scenario_table_is_read_to_seconds():
    s = scenario(
        {
            "sidekiq": {"timeout": "8s", "recovery_every": 600},
            "celery-late": {"strategy": "celery", "acks_late": True, "visibility_timeout": "10m"},
            "resumable": {"checkpoint_every": "1m30s", "lease_ttl": "1h", "requeue": "front"},
        }
    )
    assert s.strategies["sidekiq"] == {"timeout": 8.0, "recovery_every": 600.0}
    assert s.strategies["celery-late"]["visibility_timeout"] == 600.0
    assert s.strategies["resumable"]["checkpoint_every"] == 90.0
    built = strategies_of(s, ["sidekiq", "celery-late", "resumable"])
    assert built["sidekiq"] == Sidekiq(timeout=8.0, recovery_every=600.0)
    assert built["celery-late"] == Celery(acks_late=True, visibility_timeout=600.0)
    assert built["resumable"].lease_ttl == 3600.0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("strategies", "message"),
    [
        ({"sidekiq": {"timeout": "soon"}}, "strategies.sidekiq.timeout: 'soon' is not a duration"),
        (
            {"celery-late": {"strategy": "celery", "time_limit": "1x"}},
            "strategies.celery-late.time_limit: '1x' is not a duration",
        ),
    ],
)
def test_bad_text_in_a_scenario_table_names_the_key(strategies, message):
    with pytest.raises(SimError) as info:
        scenario(strategies)
    assert str(info.value).startswith(message)


def test_bad_numbers_in_a_scenario_table_are_the_strategys_to_refuse():
    s = scenario(
        {"sidekiq": {"timeout": -5}, "celery-late": {"strategy": "celery", "time_limit": -1}}
    )
    with pytest.raises(SimError, match=r"^strategies\.sidekiq\.timeout: -5\.0 is not a duration"):
        strategies_of(s, ["sidekiq"])
    with pytest.raises(SimError, match=r"^strategies\.celery-late\.time_limit: -1\.0 is not a "):
        strategies_of(s, ["celery-late"])


def test_text_through_with_values_and_set():
    s = load_scenario("heroku-hourly")
    by_values = with_values(
        s, {"strategies.sidekiq.timeout": "8s", "strategies.resumable.checkpoint_every": 30}
    )
    by_set = with_overrides(
        s, ["strategies.sidekiq.timeout=8s", "strategies.resumable.checkpoint_every=30"]
    )
    assert by_values == by_set
    assert by_set.strategies["sidekiq"]["timeout"] == 8.0
    assert by_set.strategies["resumable"]["checkpoint_every"] == 30.0
    assert strategies_of(by_set, ["sidekiq"])["sidekiq"].term_wait == 8.0
    with pytest.raises(SimError, match=r"^strategies\.sidekiq\.timeout: 'later' is not a"):
        with_overrides(s, ["strategies.sidekiq.timeout=later"])


durations = st.one_of(
    st.integers(0, 10**7).map(float),
    st.floats(0, 1e9, allow_nan=False, allow_infinity=False),
    st.just(math.inf),
)


@settings(max_examples=60)
@given(
    timeout=durations,
    ttl=durations,
    time_limit=st.none() | durations,
    chunk=st.integers(1, 1000),
    on_kill=st.sampled_from(["fail", "requeue"]),
)
def test_strategy_tables_round_trip_exactly(timeout, ttl, time_limit, chunk, on_kill):
    tables = {
        "sidekiq": {"timeout": timeout, "fetch": "reliable", "heartbeat_ttl": ttl},
        "split": {"chunk": chunk, "timeout": timeout},
        "resque": {"on_kill": on_kill, "mode": "term"},
        "celery-late": {"strategy": "celery", "acks_late": True, "time_limit": time_limit},
        "mine": {"strategy": "nothing-known", "timeout": "as written"},
    }
    s = scenario(tables)
    d = scenario_to_dict(s)
    if all(math.isfinite(v) for v in (timeout, ttl, time_limit or 0.0)):
        json.dumps(d, allow_nan=False)
    assert d["strategies"]["mine"] == tables["mine"]  # an unknown strategy's table as written
    again = scenario_from_dict(d, "again")
    assert again == s
    assert again.strategies == s.strategies
    built = strategies_of(again, ["sidekiq", "split", "resque", "celery-late"])
    assert built["sidekiq"].term_wait == timeout
    assert built["split"].chunk == chunk


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_params_build_the_same_strategy_again(name):
    built = make_strategy(name)
    assert make_strategy(name, built.params()) == built


# -- names and hints ----------------------------------------------------------------------------


def test_parameters_named_after_a_decision_keep_their_table_name():
    split = make_strategy("split", {"chunk": 30})
    assert split == Split(chunk_items=30)
    assert split.chunk == 30
    assert "chunk" in split.params() and "chunk_items" not in split.params()
    resque = make_strategy("resque", {"on_kill": "requeue"})
    assert resque == Resque(on_kill_action="requeue")
    assert resque.params()["on_kill"] == "requeue"
    with pytest.raises(StrategyError, match=r"^strategies\.split\.chunk: 0 must be a whole"):
        make_strategy("split", {"chunk": 0})


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("sidekiq", {"timout": 1}, "strategies.sidekiq.timout: unknown parameter; "
                                   "did you mean 'timeout'?"),
        ("split", {"chunks": 1}, "strategies.split.chunks: unknown parameter; "
                                 "did you mean 'chunk'?"),
        ("resque", {"zzz": 1}, "strategies.resque.zzz: unknown parameter; "
                               "known: mode, term_timeout, on_kill"),
        ("sidekik", {}, "strategy 'sidekik': unknown; did you mean 'sidekiq'? "
                        "known: sidekiq, resque, celery, rq, dramatiq, split, resumable"),
    ],
)
def test_unknown_names_get_a_hint(name, params, message):
    with pytest.raises(StrategyError) as info:
        make_strategy(name, params)
    assert str(info.value) == message


def test_did_you_mean():
    assert did_you_mean("timout", ["timeout", "fetch"]) == "did you mean 'timeout'?"
    assert did_you_mean("zzz", ["a", "b"]) == "known: a, b"
    assert did_you_mean("zzz", ["a", "b"], "valid keys are", sep=" ") == "valid keys are a, b"
    assert did_you_mean("bb", ["a", "b"], "bundled", always=True) == (
        "did you mean 'b'? bundled: a, b"
    )
