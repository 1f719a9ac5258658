"""Job lengths, arrivals and job specs: samples follow the laws scipy knows, transforms match
Monte Carlo, CSV durations load with errors that name the file and line."""

import math
import pickle
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from deploysim.sim.errors import SimError
from deploysim.sim.scenario.lengths import (
    Empirical,
    Exponential,
    Fixed,
    LengthDist,
    Lognormal,
    Pareto,
    Weibull,
    load_empirical,
)
from deploysim.sim.scenario.workloads import (
    JobClass,
    Workload,
    arrival_times,
    poisson_times,
    sample_jobs,
)

DAY = 86400.0

LAWS = [
    Fixed(30.0),
    Exponential(60.0),
    Lognormal(30.0, 1.0),
    Pareto(2.5, 1.0),
    Pareto(1.0, 1.0, 3600.0),
    Pareto(0.8, 2.0, 1000.0),
    Weibull(0.7, 100.0),
    Weibull(2.0, 100.0),
    Empirical((1.0, 2.0, 10.0, 40.0), source="inline"),
]


def rng(seed=0):
    return np.random.default_rng(seed)


@pytest.mark.parametrize("law", LAWS, ids=lambda law: law.describe())
def test_sample_mean_matches_mean(law):
    x = law.sample(rng(1), 400_000)
    assert x.dtype == np.float64
    assert x.shape == (400_000,)
    assert (x >= 0).all()
    standard_error = x.std() / math.sqrt(len(x))
    assert abs(x.mean() - law.mean()) <= 5 * standard_error + 1e-12


@pytest.mark.parametrize("law", LAWS, ids=lambda law: law.describe())
def test_every_law_speaks_the_protocol_and_pickles(law):
    assert isinstance(law, LengthDist)
    assert law.describe()
    assert pickle.loads(pickle.dumps(law)) == law
    assert law.mgf(0.0) == pytest.approx(1.0)
    assert law.laplace(0.0) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("law", "reference"),
    [
        (Lognormal(30.0, 1.5), stats.lognorm(s=1.5, scale=30.0)),
        (Exponential(60.0), stats.expon(scale=60.0)),
        (Pareto(1.0, 1.0), stats.pareto(b=1.0, scale=1.0)),
        (Pareto(1.0, 1.0, 30 * DAY), stats.truncpareto(b=1.0, c=30 * DAY, scale=1.0)),
        (Pareto(1.7, 5.0, 500.0), stats.truncpareto(b=1.7, c=100.0, scale=5.0)),
        (Weibull(0.7, 100.0), stats.weibull_min(c=0.7, scale=100.0)),
    ],
    ids=lambda value: getattr(value, "kind", ""),
)
def test_samples_follow_the_scipy_law(law, reference):
    result = stats.kstest(law.sample(rng(2), 20_000), reference.cdf)
    assert result.pvalue > 1e-4
    if math.isfinite(reference.mean()):
        assert law.mean() == pytest.approx(reference.mean(), rel=1e-9)


def test_unix_lifetimes_law():
    """P(L > T | L >= 1 s) = 1/T (Harchol-Balter and Downey, 1996)."""
    x = Pareto(1.0, 1.0).sample(rng(3), 200_000)
    for t in (2.0, 10.0, 100.0):
        assert (x > t).mean() == pytest.approx(1 / t, rel=0.05)
    assert Pareto(1.0, 1.0).mean() == math.inf


@settings(max_examples=50)
@given(
    alpha=st.floats(0.1, 4.0),
    minimum=st.floats(1e-3, 1e4),
    ratio=st.floats(1.0001, 1e7),
    seed=st.integers(0, 2**32 - 1),
)
def test_truncated_pareto_stays_within_bounds(alpha, minimum, ratio, seed):
    law = Pareto(alpha, minimum, minimum * ratio)
    x = law.sample(np.random.default_rng(seed), 2000)
    assert (x >= minimum).all()
    assert (x <= law.maximum).all()
    assert minimum <= law.mean() <= law.maximum


@pytest.mark.parametrize("law", LAWS, ids=lambda law: law.describe())
@pytest.mark.parametrize("s", [1e-3, 1e-2, 0.5])
def test_laplace_matches_monte_carlo(law, s):
    x = law.sample(rng(4), 200_000)
    values = np.exp(-s * x)
    tolerance = 5 * values.std() / math.sqrt(len(x)) + 1e-12
    assert abs(law.laplace(s) - values.mean()) <= tolerance


@pytest.mark.parametrize(
    ("law", "s"),
    [
        (Fixed(30.0), 0.01),
        (Exponential(60.0), 0.005),
        (Pareto(0.8, 2.0, 1000.0), 0.001),
        (Weibull(2.0, 100.0), 0.005),
        (Empirical((1.0, 2.0, 10.0, 40.0)), 0.05),
        (Lognormal(30.0, 1.0), -0.02),
    ],
    ids=lambda value: getattr(value, "kind", str(value)),
)
def test_mgf_matches_monte_carlo(law, s):
    x = law.sample(rng(5), 200_000)
    values = np.exp(s * x)
    tolerance = 5 * values.std() / math.sqrt(len(x)) + 1e-12
    assert abs(law.mgf(s) - values.mean()) <= tolerance


def test_mgf_is_infinite_where_it_diverges():
    assert Lognormal(30.0, 1.0).mgf(1e-6) == math.inf
    assert Pareto(3.0, 1.0).mgf(1e-6) == math.inf
    assert Weibull(0.5, 10.0).mgf(1e-6) == math.inf
    assert Exponential(60.0).mgf(1 / 60) == math.inf
    assert Exponential(60.0).mgf(1 / 120) == pytest.approx(2.0)
    assert Pareto(1.0, 1.0, 30 * DAY).mgf(40 / DAY) == math.inf  # e^(1200): beyond floats


def test_laplace_against_scipy_expect():
    """An independent quadrature of E[exp(-s L)] by scipy.stats."""
    s = 0.01
    pairs = [
        (Lognormal(30.0, 1.0), stats.lognorm(s=1.0, scale=30.0)),
        (Weibull(1.5, 50.0), stats.weibull_min(c=1.5, scale=50.0)),
        (Pareto(1.2, 1.0, 1e4), stats.truncpareto(b=1.2, c=1e4, scale=1.0)),
    ]
    for law, reference in pairs:
        expected = reference.expect(lambda x: np.exp(-s * x))
        assert law.laplace(s) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Fixed(-1.0), "Fixed.length"),
        (lambda: Exponential(0.0), "Exponential.mean"),
        (lambda: Lognormal(0.0, 1.0), "Lognormal.median"),
        (lambda: Lognormal(1.0, -1.0), "Lognormal.sigma"),
        (lambda: Pareto(0.0, 1.0), "Pareto.alpha"),
        (lambda: Pareto(1.0, 10.0, 5.0), "Pareto.maximum"),
        (lambda: Weibull(1.0, math.nan), "Weibull.scale"),
        (lambda: Empirical(()), "Empirical.durations"),
        (lambda: Empirical((1.0, -2.0)), "Empirical.durations[1]"),
    ],
)
def test_bad_parameters_name_their_field(make, field):
    with pytest.raises(SimError) as info:
        make()
    assert str(info.value).startswith(field + ": ")


# -- empirical CSV ---------------------------------------------------------------------------


def test_csv_with_duration_header(tmp_path):
    path = tmp_path / "lengths.csv"
    path.write_text("job,queue,duration\nImport,default,25s\nExport,low,1.5\n\n# note\nX,y,2m\n")
    law = load_empirical(path)
    assert law.durations == (25.0, 1.5, 120.0)
    assert law.source == str(path)
    assert law.mean() == pytest.approx((25 + 1.5 + 120) / 3)


def test_csv_first_numeric_column_and_no_header(tmp_path):
    with_header = tmp_path / "a.csv"
    with_header.write_text("job,seconds,tries\nImport,30,1\nExport,40,2\n")
    assert load_empirical(with_header).durations == (30.0, 40.0)
    bare = tmp_path / "b.csv"
    bare.write_text("10s\n20s\n1m\n")
    assert load_empirical(bare).durations == (10.0, 20.0, 60.0)


def test_csv_named_column(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("wait,run\n5,30\n6,40\n")
    assert load_empirical(path, column="run").durations == (30.0, 40.0)
    with pytest.raises(SimError, match="no column 'runtime'; columns are wait, run"):
        load_empirical(path, column="runtime")


def test_csv_errors_name_file_and_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("duration\n25s\n\nsoon\n")
    with pytest.raises(SimError) as info:
        load_empirical(path, field="workload.length.file")
    message = str(info.value)
    assert message.startswith("workload.length.file: ")
    assert f"{path} line 4" in message
    assert "'soon'" in message


def test_csv_missing_or_empty(tmp_path):
    with pytest.raises(SimError, match="not found"):
        load_empirical(tmp_path / "nope.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(SimError, match="no durations"):
        load_empirical(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("duration\n")
    with pytest.raises(SimError, match="no durations"):
        load_empirical(header_only)


def test_empirical_resamples_only_its_values():
    law = Empirical((1.0, 5.0, 9.0))
    x = law.sample(rng(6), 30_000)
    assert set(np.unique(x)) == {1.0, 5.0, 9.0}
    assert np.bincount(x.astype(int))[[1, 5, 9]] == pytest.approx([10_000] * 3, rel=0.05)


# -- jobs and arrivals -----------------------------------------------------------------------


def workload(**overrides):
    values = {
        "arrivals": "poisson",
        "rate": 0.5,
        "count": None,
        "classes": (
            JobClass("quick", 3.0, Lognormal(20.0, 1.0), 1.0, 0.0),
            JobClass("long", 1.0, Fixed(100.0), 10.0, 0.25),
        ),
    }
    values.update(overrides)
    return Workload(**values)


def test_items_are_length_over_item_time_at_least_one():
    job_class = JobClass("c", 1.0, Fixed(1.0), 2.0, 0.0)
    items = job_class.items(np.array([0.0, 0.4, 1.0, 3.0, 5.0, 101.0, math.inf]))
    assert items.dtype == np.int64
    assert items[:-1].tolist() == [1, 1, 1, 2, 2, 50]
    assert items[-1] > 10**18


def test_sample_jobs_columns():
    specs = sample_jobs(workload(), rng(7), 100_000)
    assert len(specs) == 100_000
    assert specs.cls.dtype == np.int64
    assert specs.length.dtype == np.float64
    assert specs.items.dtype == np.int64
    assert specs.hangs.dtype == bool
    share_long = (specs.cls == 1).mean()
    assert share_long == pytest.approx(0.25, abs=0.01)
    long = specs.cls == 1
    assert (specs.length[long] == 100.0).all()
    assert (specs.items[long] == 10).all()
    assert specs.hangs[long].mean() == pytest.approx(0.25, abs=0.02)
    assert not specs.hangs[~long].any()
    quick = ~long
    expected_items = np.maximum(1, np.rint(specs.length[quick]))
    assert (specs.items[quick] == expected_items).all()


def test_sample_jobs_is_deterministic_under_a_seed():
    a = sample_jobs(workload(), rng(8), 1000)
    b = sample_jobs(workload(), rng(8), 1000)
    for name in ("cls", "length", "items", "hangs"):
        assert np.array_equal(getattr(a, name), getattr(b, name))


def test_a_million_jobs_is_cheap():
    w = workload(rate=1e6 / (30 * DAY))
    generator = rng(9)
    start = time.perf_counter()
    times = arrival_times(w, generator, 30 * DAY)
    specs = sample_jobs(w, generator, len(times))
    elapsed = time.perf_counter() - start
    assert len(specs) == pytest.approx(1e6, rel=0.01)
    assert elapsed < 1.0


def test_poisson_arrivals():
    times = arrival_times(workload(rate=0.2), rng(10), 10 * DAY)
    expected = 0.2 * 10 * DAY
    assert abs(len(times) - expected) < 5 * math.sqrt(expected)
    assert (np.diff(times) >= 0).all()
    assert times[0] >= 0 and times[-1] < 10 * DAY
    gaps = np.diff(times)
    assert gaps.mean() == pytest.approx(5.0, rel=0.02)


def test_backlog_arrivals_are_zeros():
    w = workload(arrivals="backlog", rate=None, count=250)
    times = arrival_times(w, rng(11), DAY)
    assert times.dtype == np.float64
    assert times.tolist() == [0.0] * 250


@given(rate=st.floats(1e-4, 10.0), horizon=st.floats(1.0, 1e4), seed=st.integers(0, 2**32 - 1))
def test_poisson_times_sorted_within_horizon(rate, horizon, seed):
    times = poisson_times(rate, np.random.default_rng(seed), horizon)
    assert (np.diff(times) >= 0).all()
    assert ((times >= 0) & (times < horizon)).all()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"arrivals": "burst"}, "Workload.arrivals"),
        ({"rate": None}, "Workload.rate"),
        ({"rate": -1.0}, "Workload.rate"),
        ({"arrivals": "backlog", "count": None}, "Workload.count"),
        ({"arrivals": "backlog", "count": -3}, "Workload.count"),
        ({"classes": ()}, "Workload.classes"),
    ],
)
def test_bad_workloads_name_their_field(overrides, field):
    with pytest.raises(SimError, match="^" + field.replace(".", r"\.") + ": "):
        workload(**overrides)


def test_bad_job_class_names_its_field():
    with pytest.raises(SimError, match="hang_probability: must be a probability"):
        JobClass("c", 1.0, Fixed(1.0), 1.0, 1.5)
    with pytest.raises(SimError, match="item_time: must be > 0"):
        JobClass("c", 1.0, Fixed(1.0), 0.0, 0.0)
    with pytest.raises(SimError, match="length: must be one of"):
        JobClass("c", 1.0, 30.0, 1.0, 0.0)  # type: ignore[arg-type]
