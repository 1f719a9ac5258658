"""Fitting: each law is recovered from its own samples, censored and zero durations are used
for what they say, the fits read back as scenario tables, bad data is a SimError that names the
value, and deploy times give a rate and a [deploys] table."""

import datetime as dt
import math

import numpy as np
import pytest

from deploysim.sim.analysis.fit import (
    FAMILIES,
    LengthFit,
    best_fit,
    deploy_rate,
    deploys_table,
    fit_lengths,
)
from deploysim.sim.durations import parse_duration
from deploysim.sim.errors import SimError
from deploysim.sim.scenario import scenario_from_dict
from deploysim.sim.scenario.lengths import Exponential, Lognormal, Pareto, Weibull

N = 4000

# law, its parameters as fit_lengths names them, a sampler
CASES = [
    ("lognormal", {"median": 30.0, "sigma": 1.2},
     lambda r: r.lognormal(math.log(30.0), 1.2, N)),
    ("exponential", {"mean": 60.0}, lambda r: r.exponential(60.0, N)),
    ("weibull", {"shape": 0.7, "scale": 100.0}, lambda r: 100.0 * r.weibull(0.7, N)),
    ("pareto", {"alpha": 1.5, "minimum": 2.0}, lambda r: 2.0 * (1.0 + r.pareto(1.5, N))),
]


@pytest.mark.parametrize(("name", "true", "sample"), CASES, ids=[c[0] for c in CASES])
def test_recovers_known_parameters_and_picks_the_true_law(name, true, sample):
    fits = fit_lengths(sample(np.random.default_rng(7)))
    assert [f.aic for f in fits] == sorted(f.aic for f in fits)
    assert {f.name for f in fits} == set(FAMILIES)
    best = fits[0]
    # exponential is Weibull of shape 1: the two tie, and AIC's parameter count decides
    assert best.name == name
    for key, value in true.items():
        assert best.params[key] == pytest.approx(value, rel=0.06), key
    assert best.ks_pvalue > 0.01
    assert best.n == N and best.n_zero == 0 and best.n_censored == 0
    wrong = [f for f in fits if f.name not in (name, "weibull" if name == "exponential" else "")]
    assert all(f.ks_pvalue < 1e-6 for f in wrong)


def test_lognormal_fit_is_the_closed_form_mle():
    x = np.random.default_rng(3).lognormal(1.0, 0.5, 500)
    fit = fit_lengths(x, families=["lognormal"])[0]
    logs = np.log(x)
    assert fit.params["median"] == pytest.approx(math.exp(logs.mean()), rel=1e-6)
    assert fit.params["sigma"] == pytest.approx(logs.std(), rel=1e-6)
    assert fit.aic == pytest.approx(2 * 2 - 2 * fit.log_likelihood)


def test_right_censored_durations_are_lower_bounds():
    x = np.random.default_rng(11).lognormal(math.log(30.0), 1.0, N)
    censored = x > 90.0  # killed by a 90 s timeout: about 14% of the jobs
    shown = np.where(censored, 90.0, x)
    naive = fit_lengths(shown, families=["lognormal"])[0]
    fit = fit_lengths(shown, censored, families=["lognormal"])[0]
    assert fit.n_censored == censored.sum() > 0.1 * N
    assert fit.params["median"] == pytest.approx(30.0, rel=0.05)
    assert fit.params["sigma"] == pytest.approx(1.0, rel=0.05)
    assert naive.params["sigma"] < 0.95  # ignoring the censoring squeezes the tail
    assert fit.ks_pvalue > 0.01


def test_zeros_are_shorter_than_the_clock_resolution():
    x = np.random.default_rng(5).lognormal(math.log(0.02), 1.5, N)  # webhooks, median 20 ms
    shown = np.floor(x * 1000) / 1000  # a clock of 1 ms: about 2% show as 0
    fits = fit_lengths(shown, resolution="1ms")
    lognormal = next(f for f in fits if f.name == "lognormal")
    assert lognormal.n_zero == (shown == 0).sum() > 0
    assert lognormal.resolution == 0.001
    assert lognormal.params["median"] == pytest.approx(0.02, rel=0.06)
    assert lognormal.params["sigma"] == pytest.approx(1.5, rel=0.06)
    assert math.isfinite(next(f for f in fits if f.name == "pareto").aic)
    # by default the resolution is the smallest positive duration
    assert fit_lengths(shown)[0].resolution == shown[shown > 0].min()


def test_fits_become_scenario_tables_and_laws():
    fits = {f.name: f for f in fit_lengths(np.random.default_rng(2).lognormal(4.0, 1.0, 800))}
    for fit in fits.values():
        table = fit.as_length_table()
        assert table["kind"] == fit.name
        scenario = scenario_from_dict(
            {"name": "fitted", "horizon": "1h",
             "deploys": {"schedule": "none"},
             "workload": {"arrivals": "poisson", "rate": "10/h", "length": table}},
            "test",
        )
        law = scenario.workload.classes[0].length
        assert law.kind == fit.name
        for key, value in fit.params.items():
            assert law.params()[key] == pytest.approx(value, rel=1e-3)
    table = fits["lognormal"].as_length_table(digits=3)
    median = fits["lognormal"].params["median"]
    assert parse_duration(table["median"], "median") == float(f"{median:.3g}")
    assert isinstance(fits["lognormal"].law(), Lognormal)
    assert isinstance(fits["exponential"].law(), Exponential)
    assert isinstance(fits["weibull"].law(), Weibull)
    assert isinstance(fits["pareto"].law(maximum=86400.0), Pareto)
    assert fits["pareto"].as_length_table(maximum="30d")["maximum"] == "30d"
    assert fits["lognormal"].describe().startswith("lognormal median")
    x = np.array([1.0, 10.0, 100.0])
    assert np.all(np.diff(fits["weibull"].cdf(x)) > 0)


def test_best_fit_takes_fits_or_durations():
    x = np.random.default_rng(4).exponential(10.0, 1000)
    fits = fit_lengths(x)
    assert best_fit(fits) == fits[0]
    assert best_fit(x) == fits[0]
    assert best_fit(list(reversed(fits))) == fits[0]
    assert isinstance(best_fit(x.tolist(), families=["lognormal"]), LengthFit)
    with pytest.raises(SimError, match="best_fit"):
        best_fit(fits, families=["lognormal"])


def test_durations_may_be_written_as_strings():
    fit = fit_lengths(["1s", "2s", "30s", "1m", "5m", 12, 7.5], families=["lognormal"])[0]
    assert fit.n == 7


@pytest.mark.parametrize(
    ("durations", "censored", "message"),
    [
        ([], None, r"durations: no durations"),
        ([1.0, -2.0, 3.0], None, r"durations\[1\]: -2.0 is negative"),
        ([1.0, math.nan], None, r"durations\[1\]: nan is not a finite"),
        ([1.0, math.inf], None, r"durations\[1\]: inf is not a finite"),
        ([1.0, "soon"], None, r"durations\[1\]: 'soon' is not a duration"),
        ([1.0, None], None, r"durations\[1\]: None is not a duration"),
        ("10s", None, r"durations: give a sequence"),
        ([0.0, 0.0, 0.0], None, r"at least two different"),
        ([5.0, 5.0, 5.0], None, r"at least two different"),
        ([1.0, 2.0, 3.0], [True, False], r"censored: has 2 flags for 3 durations"),
        ([1.0, 2.0, 3.0], [True, False, "yes"], r"censored\[2\]: must be true or false"),
        ([1.0, 2.0, 3.0], [True, True, False], r"at least two different"),
    ],
)
def test_bad_durations_are_errors_that_name_the_value(durations, censored, message):
    with pytest.raises(SimError, match=message):
        fit_lengths(durations, censored)


def test_bad_options_are_errors():
    x = [1.0, 2.0, 4.0, 8.0]
    with pytest.raises(SimError, match=r"families: .*gamma"):
        fit_lengths(x, families=["gamma"])
    with pytest.raises(SimError, match="resolution: must be > 0"):
        fit_lengths(x, resolution=0)
    with pytest.raises(SimError, match="digits"):
        fit_lengths(x)[0].as_length_table(digits=0)


MONDAY = dt.datetime(2025, 3, 3)


def test_deploy_rate_is_one_over_the_mean_gap():
    times = [MONDAY + dt.timedelta(minutes=30 * k) for k in range(9)]
    assert deploy_rate(times) == pytest.approx(2 / 3600)
    assert deploy_rate(reversed(times)) == pytest.approx(2 / 3600)
    assert deploy_rate([t.isoformat() for t in times]) == pytest.approx(2 / 3600)
    assert deploy_rate(np.array(times, dtype="datetime64[s]")) == pytest.approx(2 / 3600)
    assert deploy_rate([0, 100.0, 300.0]) == pytest.approx(2 / 300)


def test_deploy_rate_of_a_poisson_stream():
    gaps = np.random.default_rng(9).exponential(3600 / 1.5, 3000)
    assert deploy_rate(np.cumsum(gaps)) == pytest.approx(1.5 / 3600, rel=0.05)


@pytest.mark.parametrize(
    ("times", "message"),
    [
        ([], r"timestamps: 0 time\(s\)"),
        ([MONDAY], r"timestamps: 1 time\(s\)"),
        ([MONDAY, MONDAY], r"every time is the same"),
        (["2025-03-03 09:00", "next tuesday"], r"timestamps\[1\]: 'next tuesday' is not a time"),
        ([1.0, math.nan], r"timestamps\[1\]: nan is not a finite time"),
        ([1.0, None], r"timestamps\[1\]: None is not a time"),
        ("2025-03-03", r"timestamps: give a sequence"),
    ],
)
def test_bad_deploy_times_are_errors(times, message):
    with pytest.raises(SimError, match=message):
        deploy_rate(times)


def test_deploys_table_recognises_the_rhythm():
    periodic = [MONDAY + dt.timedelta(hours=k) for k in range(48)]
    assert deploys_table(periodic) == {"schedule": "periodic", "every": "1h"}

    rng = np.random.default_rng(1)
    office = []
    for day in range(28):
        date = MONDAY + dt.timedelta(days=day)
        if date.weekday() < 5:
            hours = rng.uniform(9, 17, rng.poisson(16))
            office += [date + dt.timedelta(hours=float(h)) for h in hours]
    table = deploys_table(office)
    assert table["schedule"] == "business-hours"
    assert table["days"] == [0, 1, 2, 3, 4] and table["hours"] == [9.0, 17.0]
    assert float(table["rate"].removesuffix("/h")) == pytest.approx(2.0, rel=0.1)

    anytime = np.sort(rng.uniform(0, 28 * 86400, 200))
    table = deploys_table(anytime)
    assert table["schedule"] == "poisson"
    assert float(table["rate"].removesuffix("/d")) == pytest.approx(199 / 28, rel=0.05)
    # what it gives is a valid [deploys] table
    scenario_from_dict(
        {"name": "x", "horizon": "1d", "deploys": deploys_table(office),
         "workload": {"arrivals": "poisson", "rate": "1/h", "length": "1m"}},
        "test",
    )
