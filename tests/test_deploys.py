"""Deploy schedules, platform restarts and crashes: the right times, in the right windows,
the same under the same seed."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploysim.sim.errors import SimError
from deploysim.sim.scenario.deploys import (
    DAY,
    PRESETS,
    Crashes,
    Deploys,
    Platform,
    crash_times,
    daily_restart_times,
    deploy_times,
    platform_preset,
)

HOUR = 3600.0


def rng(seed=0):
    return np.random.default_rng(seed)


def test_periodic_spacing_with_phase():
    times = deploy_times(Deploys("periodic", every=HOUR, phase=600.0), rng(), DAY)
    assert times[0] == 600.0
    assert np.allclose(np.diff(times), HOUR)
    assert len(times) == 24
    assert times[-1] < DAY


@given(every=st.floats(1.0, 1e5), horizon=st.floats(1.0, 1e6), seed=st.integers(0, 2**32 - 1))
def test_periodic_random_phase_covers_the_horizon(every, horizon, seed):
    times = deploy_times(Deploys("periodic", every=every), np.random.default_rng(seed), horizon)
    assert ((times >= 0) & (times < horizon)).all()
    if len(times):
        assert times[0] < every
        assert np.allclose(np.diff(times), every)
        assert horizon - times[-1] <= every * (1 + 1e-9)
    else:
        assert horizon <= every


def test_poisson_count_is_rate_times_horizon():
    rate, horizon = 40 / DAY, 60 * DAY
    times = deploy_times(Deploys("poisson", rate=rate), rng(1), horizon)
    expected = rate * horizon
    assert abs(len(times) - expected) < 5 * math.sqrt(expected)
    assert (np.diff(times) >= 0).all()
    assert times[-1] < horizon


def test_business_hours_only_inside_windows():
    deploys = Deploys("business-hours", rate=4 / HOUR, days=(0, 2, 4), hours=(9.0, 17.5))
    horizon = 28 * DAY
    times = deploy_times(deploys, rng(2), horizon)
    weekday = (times // DAY).astype(int) % 7
    hour = (times % DAY) / HOUR
    assert set(weekday) == {0, 2, 4}
    assert ((hour >= 9.0) & (hour < 17.5)).all()
    expected = 4 * 8.5 * 3 * 4  # rate x hours a day x days a week x weeks
    assert abs(len(times) - expected) < 5 * math.sqrt(expected)


def test_times_are_sorted_and_clipped():
    deploys = Deploys("times", times=(7200.0, 0.0, 3600.0, 10 * DAY))
    assert deploy_times(deploys, rng(), DAY).tolist() == [0.0, 3600.0, 7200.0]


def test_no_deploys():
    assert len(deploy_times(Deploys("none"), rng(), DAY)) == 0


@pytest.mark.parametrize(
    "deploys",
    [
        Deploys("periodic", every=HOUR),
        Deploys("poisson", rate=40 / DAY),
        Deploys("business-hours", rate=2 / HOUR),
    ],
)
def test_deploys_deterministic_under_a_seed(deploys):
    a = deploy_times(deploys, rng(3), 7 * DAY)
    b = deploy_times(deploys, rng(3), 7 * DAY)
    assert np.array_equal(a, b)
    assert a.dtype == np.float64


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"schedule": "hourly"}, "Deploys.schedule"),
        ({"schedule": "periodic"}, "Deploys.every"),
        ({"schedule": "periodic", "every": 0.0}, "Deploys.every"),
        ({"schedule": "poisson"}, "Deploys.rate"),
        ({"schedule": "business-hours"}, "Deploys.rate"),
        ({"schedule": "none", "days": (0, 7)}, "Deploys.days"),
        ({"schedule": "none", "days": ()}, "Deploys.days"),
        ({"schedule": "none", "hours": (18.0, 9.0)}, "Deploys.hours"),
        ({"schedule": "none", "times": (5.0, -1.0)}, "Deploys.times[1]"),
        ({"schedule": "none", "batch_size": 0}, "Deploys.batch_size"),
        ({"schedule": "periodic", "every": 60.0, "phase": -1.0}, "Deploys.phase"),
    ],
)
def test_bad_deploys_name_their_field(values, field):
    with pytest.raises(SimError) as info:
        Deploys(**values)
    assert str(info.value).startswith(field + ": ")


def test_presets_follow_semantics():
    assert {name: p.grace for name, p in PRESETS.items()} == {
        "heroku": 30.0,
        "kubernetes": 30.0,
        "ecs": 30.0,
        "cloud-run": 10.0,
        "fly": 5.0,
    }
    assert PRESETS["heroku"].daily_restarts
    assert not any(p.daily_restarts for name, p in PRESETS.items() if name != "heroku")
    assert platform_preset("fly") == PRESETS["fly"]
    with pytest.raises(SimError, match="unknown platform 'lambda'"):
        platform_preset("lambda")


def test_bad_platform_and_crashes_name_their_field():
    with pytest.raises(SimError, match=r"^Platform\.grace: "):
        Platform(grace=-1.0)
    with pytest.raises(SimError, match=r"^Platform\.preset: "):
        Platform(preset="heroku-ish")
    with pytest.raises(SimError, match=r"^Crashes\.mtbf: "):
        Crashes(mtbf=0.0)


def test_daily_restarts_spacing():
    horizon = 60 * DAY
    per_worker = daily_restart_times(PRESETS["heroku"], rng(4), horizon, 25)
    assert len(per_worker) == 25
    firsts = [times[0] for times in per_worker]
    assert all(0 <= first < DAY for first in firsts)
    for times in per_worker:
        gaps = np.diff(times)
        assert (gaps >= DAY).all()
        assert (gaps <= DAY + 216 * 60).all()
        assert times[-1] < horizon
        assert horizon - times[-1] <= DAY + 216 * 60
    # workers are cycled independently
    assert len(set(firsts)) == 25


def test_daily_restarts_off():
    per_worker = daily_restart_times(Platform(), rng(), 10 * DAY, 3)
    assert [len(times) for times in per_worker] == [0, 0, 0]


def test_crashes_are_poisson_per_worker():
    mtbf, horizon, workers = DAY, 100 * DAY, 20
    per_worker = crash_times(Crashes(mtbf), rng(5), horizon, workers)
    assert len(per_worker) == workers
    total = sum(len(times) for times in per_worker)
    expected = workers * horizon / mtbf
    assert abs(total - expected) < 5 * math.sqrt(expected)
    for times in per_worker:
        assert (np.diff(times) >= 0).all()
        assert ((times >= 0) & (times < horizon)).all()
    assert [len(t) for t in crash_times(Crashes(), rng(), horizon, 2)] == [0, 0]


def test_restarts_and_crashes_deterministic_under_a_seed():
    a = daily_restart_times(PRESETS["heroku"], rng(6), 10 * DAY, 4)
    b = daily_restart_times(PRESETS["heroku"], rng(6), 10 * DAY, 4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    c = crash_times(Crashes(DAY), rng(7), 10 * DAY, 4)
    d = crash_times(Crashes(DAY), rng(7), 10 * DAY, 4)
    assert all(np.array_equal(x, y) for x, y in zip(c, d, strict=True))
