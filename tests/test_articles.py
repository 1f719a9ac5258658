"""The analysis behind the notebooks, called as a reader would call it from their own: the
strategy comparison (``articles.compare``), the checkpoint tuning (``articles.checkpoints``)
and the workload fitting (``articles.workload``), on inputs small enough to run in seconds."""

from __future__ import annotations

import math
import tomllib

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from deploysim.sim.analysis import theory
from deploysim.sim.analysis.fit import fit_lengths
from deploysim.sim.articles import checkpoints, compare, workload
from deploysim.sim.articles.figures import strategy_order
from deploysim.sim.durations import parse_duration
from deploysim.sim.report.plots import STRATEGY_COLORS
from deploysim.sim.scenario import scenario_from_dict

STRATEGIES = list(STRATEGY_COLORS)


def tiny(name: str = "tiny", seed: int = 3, **workload_table) -> object:
    """A fleet of 3 workers deploying every 20 minutes for 3 hours; jobs of 10 s to 10 min."""
    return scenario_from_dict({
        "name": name, "seed": seed, "horizon": "3h", "replications": 1,
        "fleet": {"workers": 3, "restart_delay": "5s"},
        "platform": {"grace": "30s"},
        "deploys": {"schedule": "periodic", "every": "20m"},
        "workload": workload_table or {
            "arrivals": "poisson", "rate": "60/h", "item_time": "1s",
            "length": {"kind": "lognormal", "median": "40s", "sigma": 1.2}},
    }, "test_articles")


@pytest.fixture(scope="module")
def results():
    return compare.run_scenarios([tiny("a"), tiny("b", seed=4)], processes=1)


@pytest.fixture(scope="module")
def table(results):
    return compare.comparison_table(results)


# -- compare ------------------------------------------------------------------------------------


def test_comparison_table_has_a_row_per_scenario_and_strategy(table):
    assert list(table.index.names) == ["scenario", "strategy"]
    assert list(table.index) == [(s, n) for s in ("a", "b") for n in STRATEGIES]
    assert {"completed_pct", "wasted_pct", "dup_items_per_job", "drain_max_s",
            "dropped_per_1000", "pending_share"} <= set(table.columns)
    assert table["completed_pct"].between(0, 100).all()
    assert np.allclose(table["not_completed_per_1000"], 10 * (100 - table["completed_pct"]))
    done = table["completed"] + table["failed"] + table["lost"] + table["pending"]
    assert np.allclose(done, table["enqueued"])


def test_every_strategy_of_a_scenario_meets_the_same_jobs_and_deploys(table):
    for name in ("a", "b"):
        t = table.loc[name]
        assert t["enqueued"].nunique() == 1 and t["deploys"].nunique() == 1
        assert t["deploys"].iloc[0] == 9  # every 20 minutes for 3 hours


def test_the_strategies_keep_their_semantics(table):
    t = table.loc["a"]
    # waiting repeats nothing; resque fails what celery loses, on the same draws
    assert (t.loc[["resque", "celery", "resumable"], "dup_items_per_job"] == 0).all()
    assert t.loc["resque", "failed"] == t.loc["celery", "lost"] > 0
    assert t.loc["sidekiq", "dup_items_per_job"] > 0
    # the resumable engine drains in about one item, the others wait up to the grace
    assert t.loc["resumable", "drain_max_s"] <= 1.5 < t.loc["resque", "drain_max_s"] <= 30.5


def test_a_run_is_determined_by_its_seed():
    once = compare.compare([tiny("a")], ["sidekiq", "resumable"], processes=1)
    again = compare.compare([tiny("a")], ["sidekiq", "resumable"], processes=1)
    other = compare.compare([tiny("a")], ["sidekiq", "resumable"], seed=99, processes=1)
    pd.testing.assert_frame_equal(once, again)
    assert not once.equals(other)


def test_horizon_and_replications_override_the_scenarios():
    t = compare.compare([tiny("a")], ["resumable"], horizon="1h", processes=1)
    assert t.loc[("a", "resumable"), "deploys"] == 3


def rows(**columns) -> pd.DataFrame:
    base = {"dropped_per_1000": 0.0, "pending_share": 0.0, "wasted_pct": 1.0,
            "dup_items_per_job": 0.0}
    names = list(columns)
    return pd.DataFrame([{**base, **columns[n]} for n in names], index=names)


def test_the_rule_keeps_what_drops_least_and_keeps_up_then_wastes_least():
    t = rows(
        cheap_but_drops={"dropped_per_1000": 5.0, "wasted_pct": 0.0},
        cheap_but_behind={"pending_share": 0.2, "wasted_pct": 0.0},
        repeats={"wasted_pct": 0.5, "dup_items_per_job": 3.0},
        clean={"wasted_pct": 0.5, "dropped_per_1000": 0.4},
        wasteful={"wasted_pct": 9.0},
    )
    assert set(compare.contenders(t).index) == {"repeats", "clean", "wasteful"}
    assert compare.pick_strategy(t) == "clean"  # same waste as "repeats", fewer repeated items
    assert compare.pick_strategy(t, tie=0.1) == "repeats"  # 0.4 per 1,000 no longer ties
    assert workload.why_not(t, "clean") == {
        "cheap_but_drops": "fails or loses more jobs",
        "cheap_but_behind": "falls behind",
        "repeats": "wastes more worker time",
        "wasteful": "wastes more worker time",
    }


def test_best_strategies_picks_one_per_scenario(table):
    best = compare.best_strategies(table)
    assert list(best) == ["a", "b"]
    for name, choice in best.items():
        assert choice == compare.pick_strategy(table.loc[name])
        assert choice in compare.contenders(table.loc[name]).index


def test_comparison_figure_has_four_panels_and_one_colour_per_strategy(table):
    fig = compare.comparison_figure(table, "title")
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    assert [t.get_text() for t in fig.legends[0].get_texts()] == STRATEGIES
    bars = fig.axes[1].patches
    colours = {tuple(np.round(b.get_facecolor()[:3], 3)) for b in bars}
    assert len(colours) == len(STRATEGIES)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["a", "b"]
    # resumable wastes nothing: its bars cannot be drawn on a log scale and are marked "0"
    zeros = [a for a in fig.axes[1].texts if a.get_text() == "0"]
    assert len(zeros) == int((table["wasted_pct"] == 0).sum()) > 0


def test_completion_by_length_adds_up_to_the_table(results, table):
    lengths = compare.by_length_table(results)
    assert list(lengths.columns[:2]) == ["scenario", "strategy"]
    sums = lengths.groupby(["scenario", "strategy"])[["enqueued", "completed"]].sum()
    assert np.allclose(sums["enqueued"], table.loc[sums.index, "enqueued"])
    assert (lengths["rate"].between(0, 1) | lengths["rate"].isna()).all()
    long = compare.long_job_completion(lengths, 100.0)
    assert list(long.index) == ["a", "b"] and list(long.columns) == STRATEGIES
    assert long.stack().between(0, 100).all()
    # waiting has the platform kill long jobs; resuming finishes them
    assert (long["resumable"] > long["resque"]).all()
    fig = compare.completion_figure(lengths, {"a": 30.0, "b": 30.0})
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == len(STRATEGIES) + 1


def test_findings_and_overview_describe_the_scenario(table):
    text = compare.scenario_findings(table.loc["a"], "a", 30.0)
    assert text.startswith(f"**a**: 9 deploys and {table.loc[('a', 'sidekiq'), 'enqueued']:,.0f}")
    assert text.rstrip().endswith(f"**{compare.pick_strategy(table.loc['a'])}**.")
    overview = compare.scenario_overview([tiny("a"), "heroku-hourly"])
    assert list(overview.index) == ["a", "heroku-hourly"]
    assert overview.loc["a", "deploys"] == "every 20m"
    assert overview.loc["a", "jobs per hour"] == 60


def test_strategy_order_puts_variants_after_the_built_in_ones():
    assert strategy_order(["resumable-daly", "resumable", "sidekiq"]) == [
        "sidekiq", "resumable", "resumable-daly"]


# -- checkpoints --------------------------------------------------------------------------------

STUDY = checkpoints.CheckpointStudy(work=600.0, checkpoint_cost=10.0, restart_delay=5.0,
                                    jobs=6, workers=6, replications=1, horizon="1d")


@pytest.fixture(scope="module")
def sweep():
    return checkpoints.sweep_intervals(STUDY, ["20m", "2h"], [30.0, 120.0, 600.0],
                                       executor="serial")


def test_daly_by_segment_differs_from_daly_only_on_a_partial_last_segment():
    whole = checkpoints.daly_by_segment(7200, 600, 20, 3600, 10)
    assert whole == pytest.approx(theory.daly_expected_time(7200, 600, 20, 3600, 10))
    partial = checkpoints.daly_by_segment(7200, 5000, 20, 3600, 10)
    assert 7200 < partial < theory.daly_expected_time(7200, 5000, 20, 3600, 10)


def test_interval_sweep_rows_are_within_what_checkpoints_cost(sweep):
    assert len(sweep) == 6 and (sweep["pending"] == 0).all()
    assert (sweep["completed"] == STUDY.jobs).all()
    assert list(sweep["M"].unique()) == [1200.0, 7200.0]
    # every checkpoint but the last costs C of wall time: a floor under the simulated cost
    floor = 100 * STUDY.checkpoint_cost * (np.ceil(STUDY.work / sweep["tau"]) - 1) / STUDY.work
    assert (sweep["simulated_pct"] >= floor - 1e-9).all()
    assert (sweep["daly_pct"] > 0).all() and (sweep["segment_pct"] > 0).all()
    frequent = sweep[sweep["tau"] == 30.0]
    assert (frequent["simulated_pct"] > sweep[sweep["tau"] == 120.0]["simulated_pct"].max()).all()


def test_interval_sweep_is_determined_by_its_seed(sweep):
    again = checkpoints.sweep_intervals(STUDY, ["20m", "2h"], [30.0, 120.0, 600.0],
                                        executor="serial")
    pd.testing.assert_frame_equal(sweep, again)


def test_optima_lie_within_the_sweep_and_theory_orders_them(sweep):
    best = checkpoints.optima(STUDY, sweep)
    assert list(best.index) == ["20m", "2h"]
    for mtbf, o in best.iterrows():
        s = sweep[sweep["mtbf"] == mtbf]
        assert 0 < o["daly_tau"] < o["young_tau"]
        m = s["M"].iloc[0]
        assert o["young_tau"] == pytest.approx(math.sqrt(2 * STUDY.checkpoint_cost * m))
        assert o["best_pct"] == s["simulated_pct"].min()
        assert o["near_best_from"] <= o["best_tau"] <= o["near_best_to"]
    # rarer crashes call for rarer checkpoints
    assert best["daly_tau"].is_monotonic_increasing
    fig = checkpoints.interval_figure(STUDY, sweep, best)
    assert len(fig.axes) == 2


def test_daly_interval_beats_the_default_in_theory():
    table = checkpoints.daly_examples([(0.005, "7d"), (20.0, "6h")])
    assert len(table) == 2
    at_daly = table["extra wall time at that interval (%)"]
    assert (at_daly <= table["extra at the default 5s (%)"]).all() and (at_daly > 0).all()


MIXED = {
    "arrivals": "poisson", "rate": "30/h", "classes": [
        {"name": "short", "weight": 0.8, "item_time": "1s",
         "length": {"kind": "fixed", "length": "5s"}},
        {"name": "long", "weight": 0.2, "item_time": "1s",
         "length": {"kind": "fixed", "length": "20m"}},
    ]}


def test_max_runtime_makes_long_jobs_yield():
    scenario = tiny("mixed", **MIXED)
    limits = checkpoints.sweep_max_runtime(scenario, [None, "2m"], long=600.0)
    assert list(limits.index) == ["off", "2m"]
    assert (limits["short_jobs"] > 0).all() and (limits["long_jobs"] > 0).all()
    assert limits.loc["2m", "long_runs_mean"] > limits.loc["off", "long_runs_mean"] + 1
    assert limits[["short_completed_pct", "long_completed_pct"]].stack().between(0, 100).all()
    assert (limits["short_p50_s"] <= limits["short_p90_s"]).all()
    assert (limits["short_p90_s"] <= limits["short_p99_s"]).all()
    jobs = checkpoints.job_records(scenario)
    assert set(jobs["length"].round()) == {5.0, 1200.0}
    fig = checkpoints.max_runtime_figure(limits, 60.0, work={"work": 1200.0})
    assert len(fig.axes) == 2


def test_longest_limit_meeting_takes_the_first_that_meets_the_target():
    limits = pd.DataFrame({"short_p99_s": [900.0, 500.0, 100.0]}, index=["off", "15m", "1m"])
    assert checkpoints.longest_limit_meeting(limits, 600.0) == "15m"
    assert checkpoints.longest_limit_meeting(limits, 50.0) is None


# -- workload -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def durations_csv(tmp_path_factory):
    fast = np.random.default_rng(3).lognormal(np.log(0.02), 1.5, 120)  # three below 1ms
    slow = np.random.default_rng(5).lognormal(np.log(300.0), 0.7, 60)
    lines = ["job_class,duration,status"]
    lines += [f"fast,{v:.3f},ok" for v in fast]
    lines += [f"slow,{v:.1f},ok" for v in slow] + ["slow,15m,timeout"] * 2
    path = tmp_path_factory.mktemp("data") / "durations.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def data(durations_csv):
    return workload.read_durations(durations_csv, "duration", class_column="job_class",
                                   censored_column="status")


def test_read_durations_reads_units_zeros_and_runs_that_did_not_finish(data):
    assert len(data) == 182 and list(data.columns) == ["seconds", "censored", "class"]
    assert (data.loc[data["censored"], "seconds"] == 900.0).all()
    assert data["censored"].sum() == 2 and (data["seconds"] == 0).sum() == 3
    assert workload.classes_of(data) == ["fast", "slow"]
    overview = workload.durations_overview(data)
    assert list(overview.index) == ["fast", "slow", "all"]
    assert overview.loc["all", "runs"] == 182 == overview.loc[["fast", "slow"], "runs"].sum()
    assert overview.loc["slow", "did not finish"] == 2 and overview.loc["fast", "zero"] == 3


def test_ecdf_rises_to_one_with_zeros_at_the_resolution(data):
    x, y = workload.ecdf(data["seconds"], 0.001)
    assert x[0] == 0.001 and (np.diff(x) >= 0).all() and (np.diff(y) > 0).all()
    assert y[-1] == 1.0 and len(x) == len(data)


def test_one_law_per_kind_when_every_kind_passes(data):
    pooled = fit_lengths(data["seconds"], data["censored"], resolution="1ms")
    per_class = workload.fit_classes(data, "1ms")
    assert list(per_class) == ["fast", "slow"]
    table = workload.class_fit_table(per_class)
    assert table.loc["slow", "did not finish"] == 2 and table.loc["fast", "zero"] == 3
    assert (table["AIC margin to next"] >= 0).all()
    fits = workload.fit_table(pooled)
    assert fits["AIC - best"].iloc[0] == 0 and (fits["AIC - best"] >= 0).all()
    model = workload.choose_model(data, pooled, per_class, rate="60/h", item_time="1s",
                                  alpha=0.0)
    assert model.name == "one fitted law per kind of job"
    classes = model.workload["classes"]
    assert [c["name"] for c in classes] == ["fast", "slow"]
    assert sum(c["weight"] for c in classes) == pytest.approx(1.0, abs=1e-3)
    fallback = workload.choose_model(data, pooled, per_class, rate="60/h", item_time="1s",
                                     resolution="1ms", alpha=1.01)
    assert fallback.name == "the measured run times, resampled"
    durations = fallback.workload["length"]["durations"]
    assert len(durations) == len(data) and min(durations) == 0.0005  # half a tick for a zero
    for fig in (workload.durations_figure(data, 0.001),
                workload.pooled_fit_figure(data, pooled, 0.001),
                workload.class_fits_figure(data, per_class, 0.001)):
        assert isinstance(fig, Figure) and fig.axes


def test_daly_variant_checkpoints_at_daly_with_a_lease_twice_that():
    assert workload.daly_variant(workload.Fleet(crash_mtbf=None)) is None
    assert workload.daly_variant(workload.Fleet(checkpoint_cost="0s")) is None
    variant = workload.daly_variant(workload.Fleet(crash_mtbf="1d", checkpoint_cost="2s"))
    assert variant["strategy"] == "resumable" and variant["checkpoint_cost"] == "2s"
    every = parse_duration(variant["checkpoint_every"], "every")
    assert every == pytest.approx(theory.daly_interval(2.0, 86400.0), rel=0.05)
    assert parse_duration(variant["lease_ttl"], "lease") >= max(60.0, 2 * every)



def test_the_scenario_file_reads_back_to_the_same_scenario(data):
    pooled = fit_lengths(data["seconds"], data["censored"], resolution="1ms")
    model = workload.choose_model(data, pooled, workload.fit_classes(data), rate="60/h",
                                  item_time="1s", alpha=0.0, source="durations.csv")
    fleet = workload.Fleet(workers=4)
    deploys = {"schedule": "poisson", "rate": "4/d"}
    table = workload.scenario_table(model, fleet, deploys, horizon="2h", replications=1)
    assert set(table["strategies"]) == {*STRATEGIES, "resumable-daly"}
    assert "durations.csv" in table["description"]
    text = workload.to_toml(table)
    assert scenario_from_dict(tomllib.loads(text), "t") == scenario_from_dict(table, "t")
    measured = workload.scenario_table(model, fleet, deploys, empirical=True)
    assert measured["workload"]["length"]["kind"] == "empirical"
    again = workload.to_toml(workload.scenario_table(model, fleet, deploys, horizon="2h",
                                                     replications=1))
    assert text == again


def test_deploy_times_are_read_and_drawn(tmp_path):
    path = tmp_path / "deploys.csv"
    path.write_text("deployed_at\n2026-01-05T10:00:00\n2026-01-05T14:30:00\n2026-01-10T11:00\n")
    times = workload.read_deploys(path)
    assert len(times) == 3 and times.dt.hour.tolist() == [10, 14, 11]
    fig = workload.deploys_figure(times)
    patches = fig.axes[0].patches
    assert len(patches) == 2 * 24  # an hour's bar for weekdays, then one for the weekend

    def hours(bars):
        return [int(p.get_x()) for p in bars if p.get_height() > 0]

    assert hours(patches[:24]) == [10, 14] and hours(patches[24:]) == [11]  # 10 Jan: Saturday
