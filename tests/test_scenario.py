"""Scenario files: every bundled one loads, bad values name their field, unknown keys suggest
the nearest valid key, and a scenario survives a trip through its dictionary form."""

import copy
import json
import math
import pickle
import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploysim.sim.errors import SimError
from deploysim.sim.scenario import (
    BUNDLED_DIR,
    Fleet,
    FrozenTable,
    Scenario,
    bundled_scenarios,
    load_scenario,
    scenario_from_dict,
    scenario_to_dict,
    with_overrides,
)
from deploysim.sim.scenario.deploys import PRESETS, Crashes, Deploys, Platform
from deploysim.sim.scenario.lengths import Empirical, Fixed, Lognormal, Pareto, Weibull
from deploysim.sim.scenario.workloads import JobClass, Workload

DAY = 86400.0

MINIMAL = {
    "name": "minimal",
    "horizon": "1d",
    "deploys": {"schedule": "periodic", "every": "1h"},
    "workload": {
        "arrivals": "poisson",
        "rate": "60/h",
        "length": {"kind": "lognormal", "median": "30s", "sigma": 1.0},
    },
}


def minimal(**changes):
    d = copy.deepcopy(MINIMAL)
    d.update(changes)
    return d


def test_minimal_scenario_defaults():
    s = scenario_from_dict(MINIMAL, "minimal")
    assert s.horizon == DAY
    assert s.seed == 0
    assert s.replications == 3
    assert s.fleet == Fleet()
    assert s.platform == Platform()
    assert s.crashes == Crashes()
    assert s.deploys == Deploys("periodic", every=3600.0)
    (job_class,) = s.workload.classes
    assert job_class == JobClass("default", 1.0, Lognormal(30.0, 1.0), 1.0, 0.0)
    assert s.workload.rate == pytest.approx(1 / 60)
    assert dict(s.strategies) == {}


# -- bundled scenarios -------------------------------------------------------------------------


def test_bundled_scenarios_cover_platforms_and_published_rhythms():
    names = bundled_scenarios()
    for required in (
        "heroku-hourly",
        "kubernetes-daily",
        "shopify-40-a-day",
        "dora-elite",
        "business-hours",
        "pareto-heavy-tail",
        "bench-large",
    ):
        assert required in names
    presets = {load_scenario(name).platform.preset for name in names}
    assert set(PRESETS) <= presets


@pytest.mark.parametrize("name", sorted(bundled_scenarios()))
def test_bundled_scenario_loads_and_round_trips(name):
    s = load_scenario(name)
    assert s.name == name
    description = bundled_scenarios()[name]
    assert description == s.description
    assert description and "\n" not in description
    assert s.horizon >= DAY
    assert 1 <= s.replications <= 5
    assert s.strategies
    d = scenario_to_dict(s)
    json.dumps(d)
    again = scenario_from_dict(d, "again")
    assert again == s
    assert hash(again) == hash(s)
    assert pickle.loads(pickle.dumps(s)) == s
    if s.workload.arrivals == "poisson":
        busy = s.workload.rate * s.workload.mean_length() / s.fleet.workers
        assert busy < 0.8


def test_bundled_rhythms_match_their_names():
    assert load_scenario("shopify-40-a-day").deploys.rate == pytest.approx(40 / DAY)
    assert load_scenario("dora-elite").deploys.rate == pytest.approx(4 / DAY)
    assert load_scenario("heroku-hourly").platform.daily_restarts
    assert load_scenario("business-hours").deploys.schedule == "business-hours"
    pareto = load_scenario("pareto-heavy-tail").workload.classes[0].length
    assert pareto == Pareto(1.0, 1.0, 30 * DAY)


def test_bench_large_is_about_a_million_jobs_on_a_fleet_below_80_percent():
    s = load_scenario("bench-large")
    assert s.fleet.workers == 100
    assert s.horizon == 30 * DAY
    assert s.deploys.rate == pytest.approx(40 / DAY)
    jobs = s.workload.rate * s.horizon
    assert 0.9e6 <= jobs <= 1.1e6
    assert s.workload.rate * s.workload.mean_length() / s.fleet.workers < 0.8


def test_missing_scenarios_list_the_bundled_names(tmp_path):
    with pytest.raises(SimError, match=r"did you mean 'heroku-hourly'.*dora-elite"):
        load_scenario("heroku-hurly")
    with pytest.raises(SimError, match=r"not found.*heroku-hourly"):
        load_scenario(str(tmp_path / "nope.toml"))
    broken = tmp_path / "broken.toml"
    broken.write_text("name = \n")
    with pytest.raises(SimError, match="not valid TOML"):
        load_scenario(str(broken))


def test_scenario_file_with_relative_csv(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "runs.csv").write_text("duration\n10s\n20s\n1m\n")
    (tmp_path / "mine.toml").write_text(
        """
horizon = "2d"
[deploys]
schedule = "times"
times = ["1h", "30m"]
[workload]
arrivals = "backlog"
count = 10
length = { kind = "empirical", file = "data/runs.csv" }
"""
    )
    s = load_scenario(str(tmp_path / "mine.toml"))
    assert s.name == "mine"
    assert s.deploys.times == (3600.0, 1800.0)
    length = s.workload.classes[0].length
    assert isinstance(length, Empirical)
    assert length.durations == (10.0, 20.0, 60.0)
    assert scenario_from_dict(scenario_to_dict(s), "elsewhere") == s


def test_bundled_files_are_plain_toml():
    for path in BUNDLED_DIR.glob("*.toml"):
        with path.open("rb") as handle:
            assert tomllib.load(handle)["name"] == path.stem


# -- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["deploys"].update(evrey="1h"),
            "deploys.evrey: unknown key; did you mean 'every'?",
        ),
        (lambda d: d.update(horizn="1d"), "horizn: unknown key; did you mean 'horizon'?"),
        (
            lambda d: d.update(fleet={"worker": 3}),
            "fleet.worker: unknown key; did you mean 'workers'?",
        ),
        (
            lambda d: d["workload"]["length"].update(medain="1m"),
            "workload.length.medain: unknown key; did you mean 'median'?",
        ),
        (
            lambda d: (
                d["workload"].update(length=None, classes=[{"name": "a", "lenght": "1s"}])
                or d["workload"].pop("length")
            ),
            "workload.classes[0].lenght: unknown key; did you mean 'length'?",
        ),
        (lambda d: d.update(zzz=1), "zzz: unknown key; valid keys are name, description"),
    ],
)
def test_unknown_keys_suggest_the_nearest(edit, message):
    d = minimal()
    edit(d)
    with pytest.raises(SimError) as info:
        scenario_from_dict(d, "t")
    assert str(info.value).startswith(message)


def test_strategy_tables_pass_through_with_durations_in_seconds():
    d = minimal(
        strategies={"sidekiq": {"timeout": "8s", "anything": [1, {"x": 2}]}, "resumable": {}}
    )
    s = scenario_from_dict(d, "t")
    assert s.strategies["sidekiq"]["timeout"] == 8.0
    assert s.strategies["sidekiq"]["anything"] == (1, {"x": 2})
    assert isinstance(s.strategies, FrozenTable)
    with pytest.raises(TypeError):
        s.strategies["resumable"]["new"] = 1  # type: ignore[index]
    assert scenario_to_dict(s)["strategies"] == {
        "sidekiq": {"timeout": "8s", "anything": [1, {"x": 2}]},
        "resumable": {},
    }


BAD_VALUES = [
    ("name", "", "name"),
    ("seed", -1, "seed"),
    ("seed", 1.5, "seed"),
    ("horizon", "0s", "horizon"),
    ("horizon", "forever", "horizon"),
    ("replications", 0, "replications"),
    ("fleet.workers", 0, "fleet.workers"),
    ("fleet.workers", True, "fleet.workers"),
    ("fleet.restart_delay", "-1s", "fleet.restart_delay"),
    ("platform.grace", "soon", "platform.grace"),
    ("platform.preset", "herkou", "platform.preset"),
    ("platform.daily_restarts", "yes", "platform.daily_restarts"),
    ("deploys.schedule", "weekly", "deploys.schedule"),
    ("deploys.every", 0, "deploys.every"),
    ("deploys.rate", "often", "deploys.rate"),
    ("deploys.days", [0, 9], "deploys.days[1]"),
    ("deploys.days", "mon", "deploys.days"),
    ("deploys.hours", [17, 9], "deploys.hours"),
    ("deploys.times", ["1h", "later"], "deploys.times[1]"),
    ("deploys.batch_size", 0, "deploys.batch_size"),
    ("deploys.phase", "-5m", "deploys.phase"),
    ("crashes.mtbf", 0, "crashes.mtbf"),
    ("workload.arrivals", "burst", "workload.arrivals"),
    ("workload.rate", "0/h", "workload.rate"),
    ("workload.count", -1, "workload.count"),
    ("workload.item_time", "0s", "workload.item_time"),
    ("workload.hang_probability", 1.5, "workload.hang_probability"),
    ("workload.length", {"kind": "gamma"}, "workload.length.kind"),
    ("workload.length", {"kind": "lognormal", "median": "30s"}, "workload.length.sigma"),
    ("workload.length", {"kind": "lognormal", "median": 0, "sigma": 1}, "workload.length.median"),
    (
        "workload.length",
        {"kind": "pareto", "alpha": 1.0, "minimum": "1m", "maximum": "1s"},
        "workload.length.maximum",
    ),
    ("workload.length", {"kind": "weibull", "shape": "x", "scale": "1m"}, "workload.length.shape"),
    ("workload.length", {"kind": "empirical"}, "workload.length"),
    (
        "workload.length",
        {"kind": "empirical", "durations": ["1s", "x"]},
        "workload.length.durations[1]",
    ),
    ("workload.length", {"kind": "empirical", "file": "no/such.csv"}, "workload.length.file"),
    ("workload.length", "later", "workload.length"),
    ("strategies", {"sidekiq": 3}, "strategies.sidekiq"),
]


def set_path(d, path, value):
    *parents, last = path.split(".")
    for part in parents:
        d = d.setdefault(part, {})
    d[last] = value


@pytest.mark.parametrize(("path", "value", "field"), BAD_VALUES)
def test_each_bad_value_names_its_field(path, value, field):
    d = minimal()
    set_path(d, path, value)
    with pytest.raises(SimError) as info:
        scenario_from_dict(d, "t")
    message = str(info.value)
    assert message.startswith(field + ": ")
    assert "\n" not in message


def test_schedules_need_their_parameters():
    with pytest.raises(SimError, match=r"^deploys\.every: schedule 'periodic' needs"):
        scenario_from_dict(minimal(deploys={"schedule": "periodic"}), "t")
    with pytest.raises(SimError, match=r"^deploys\.rate: schedule 'poisson' needs"):
        scenario_from_dict(minimal(deploys={"schedule": "poisson"}), "t")
    with pytest.raises(SimError, match=r"^workload\.count: a backlog needs"):
        scenario_from_dict(minimal(workload={"arrivals": "backlog", "length": "1m"}), "t")
    with pytest.raises(SimError, match=r"^deploys: missing"):
        d = minimal()
        del d["deploys"]
        scenario_from_dict(d, "t")


def test_inline_and_classes_are_exclusive():
    d = minimal()
    d["workload"]["classes"] = [{"name": "a", "length": "1m"}]
    with pytest.raises(SimError, match=r"^workload\.length: give either"):
        scenario_from_dict(d, "t")


def test_classes_and_day_names():
    d = minimal()
    d["deploys"] = {
        "schedule": "business-hours",
        "rate": "2/h",
        "days": ["mon", "Friday"],
        "hours": ["9:30", 17],
    }
    d["workload"] = {
        "arrivals": "poisson",
        "rate": "10/m",
        "classes": [
            {"name": "quick", "weight": 3, "length": "5s"},
            {
                "name": "slow",
                "length": {"kind": "weibull", "shape": 0.7, "scale": "1h"},
                "item_time": "10s",
                "hang_probability": 0.01,
            },
        ],
    }
    s = scenario_from_dict(d, "t")
    assert s.deploys.days == (0, 4)
    assert s.deploys.hours == (9.5, 17.0)
    quick, slow = s.workload.classes
    assert quick == JobClass("quick", 3.0, Fixed(5.0), 1.0, 0.0)
    assert slow == JobClass("slow", 1.0, Weibull(0.7, 3600.0), 10.0, 0.01)
    with pytest.raises(SimError, match=r"^workload\.classes\[1\]\.name: 'quick' is used twice"):
        d["workload"]["classes"][1]["name"] = "quick"
        scenario_from_dict(d, "t")


def test_platform_preset_gives_defaults_and_keys_override():
    s = scenario_from_dict(minimal(platform={"preset": "fly"}), "t")
    assert s.platform == Platform(grace=5.0, preset="fly", daily_restarts=False)
    s = scenario_from_dict(minimal(platform={"preset": "heroku", "grace": "10s"}), "t")
    assert s.platform == Platform(grace=10.0, preset="heroku", daily_restarts=True)
    assert scenario_to_dict(s)["platform"] == {"preset": "heroku", "grace": "10s"}


# -- round trips -----------------------------------------------------------------------------

durations = st.one_of(
    st.integers(1, 10**7).map(float), st.floats(1e-3, 1e7, allow_nan=False, allow_infinity=False)
)
lengths = st.one_of(
    durations.map(Fixed),
    st.builds(Lognormal, durations, st.floats(0.05, 3.0)),
    st.builds(Pareto, st.floats(0.2, 3.0), durations, st.none()),
    st.builds(
        lambda a, m, r: Pareto(a, m, m * r), st.floats(0.2, 3.0), durations, st.floats(1.5, 1e4)
    ),
    st.builds(Weibull, st.floats(0.2, 4.0), durations),
    st.lists(st.floats(0, 1e5), min_size=1, max_size=5).map(lambda d: Empirical(tuple(d))),
)
deploys = st.one_of(
    st.just(Deploys("none")),
    st.builds(
        lambda e, p: Deploys("periodic", every=e, phase=p), durations, st.none() | st.floats(0, 1e4)
    ),
    st.builds(
        lambda r, b: Deploys("poisson", rate=r, batch_size=b),
        st.floats(1e-6, 1.0),
        st.none() | st.integers(1, 10),
    ),
    st.builds(
        lambda r, days, start, span: Deploys(
            "business-hours", rate=r, days=tuple(sorted(days)), hours=(start, start + span)
        ),
        st.floats(1e-6, 1.0),
        st.sets(st.integers(0, 6), min_size=1),
        st.floats(0, 12),
        st.floats(0.5, 12),
    ),
    st.builds(lambda t: Deploys("times", times=tuple(t)), st.lists(st.floats(0, 1e6), max_size=4)),
)


@st.composite
def scenarios(draw):
    n_classes = draw(st.integers(1, 3))
    classes = tuple(
        JobClass(
            f"c{i}", draw(st.floats(0.1, 10)), draw(lengths), draw(durations), draw(st.floats(0, 1))
        )
        for i in range(n_classes)
    )
    if draw(st.booleans()):
        workload = Workload("poisson", draw(st.floats(1e-6, 10.0)), None, classes)
    else:
        workload = Workload("backlog", None, draw(st.integers(0, 10**6)), classes)
    preset = draw(st.none() | st.sampled_from(sorted(PRESETS)))
    return Scenario(
        name=draw(st.text(min_size=1, max_size=10).filter(str.strip)),
        description=draw(st.text(max_size=20)),
        seed=draw(st.integers(0, 2**63)),
        horizon=draw(durations),
        replications=draw(st.integers(1, 10)),
        fleet=Fleet(draw(st.integers(1, 500)), draw(st.floats(0, 1e3))),
        platform=Platform(draw(st.floats(0, 1e4)), preset, draw(st.booleans())),
        deploys=draw(deploys),
        crashes=Crashes(draw(st.none() | durations)),
        workload=workload,
        strategies={"sidekiq": {"timeout": 25.0}, "resumable": {}},
    )


@settings(max_examples=60)
@given(scenarios())
def test_dict_round_trip_is_exact(s):
    d = scenario_to_dict(s)
    json.dumps(d)
    assert scenario_from_dict(d, "t") == s


# -- overrides --------------------------------------------------------------------------------


def test_with_overrides():
    s = load_scenario("heroku-hourly")
    changed = with_overrides(
        s,
        [
            "deploys.every=30m",
            "fleet.workers=5",
            "workload.length.median=2m",
            "strategies.sidekiq.timeout=8s",
            "crashes.mtbf=10d",
            "platform.preset=fly",
            "description=a test",
        ],
    )
    assert changed.deploys.every == 1800.0
    assert changed.fleet.workers == 5
    assert changed.workload.classes[0].length == Lognormal(120.0, 1.0)
    assert changed.strategies["sidekiq"]["timeout"] == 8.0
    assert changed.crashes.mtbf == 10 * DAY
    assert changed.platform.grace == 5.0
    assert changed.description == "a test"
    assert s.fleet.workers == 10  # the original is untouched
    assert with_overrides(s, []) == s


def test_with_overrides_on_classes_and_whole_tables():
    s = load_scenario("kubernetes-daily")
    changed = with_overrides(
        s, ["workload.classes.report.length.median=1h", "workload.classes.0.weight=3"]
    )
    assert changed.workload.classes[1].length == Lognormal(3600.0, 1.0)
    assert changed.workload.classes[0].weight == 3.0
    with pytest.raises(SimError, match=r"set workload\.classes\.<name>\.length\.median"):
        with_overrides(s, ["workload.length.median=1m"])
    swapped = with_overrides(
        load_scenario("dora-elite"),
        ["workload.length={kind='pareto', alpha=1.0, minimum='1s', maximum='1d'}"],
    )
    assert swapped.workload.classes[0].length == Pareto(1.0, 1.0, DAY)


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("fleet.workers", "write key=value"),
        ("=3", "write key=value"),
        ("fleet.workers=0", r"^fleet\.workers: must be an integer >= 1"),
        ("deploys.evry=1h", r"^deploys\.evry: unknown key; did you mean 'every'\?"),
        ("deploys.every=often", r"^deploys\.every: 'often' is not a duration"),
        ("fleet.workers.count=1", r"^fleet\.workers: is 10, not a table"),
    ],
)
def test_with_overrides_errors(assignment, message):
    with pytest.raises(SimError, match=message):
        with_overrides(load_scenario("heroku-hourly"), [assignment])


def test_scenario_values_are_frozen():
    s = load_scenario("dora-elite")
    with pytest.raises(AttributeError):
        s.seed = 3  # type: ignore[misc]
    assert math.isfinite(s.horizon)
