"""What a newcomer meets first: keys that would change nothing are refused with the key that
would, a rate says per what, an overloaded fleet is announced before it runs, progress shows
off a terminal too, and the README's own examples obey all of it."""

from __future__ import annotations

import copy
import io
import itertools
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from deploysim.sim.analysis.sweep import make_cells
from deploysim.sim.errors import SimError
from deploysim.sim.progress import Progress, counter, format_elapsed
from deploysim.sim.scenario import (
    Deploys,
    JobClass,
    Lognormal,
    Scenario,
    Workload,
    bundled_scenarios,
    load_scenario,
    parse_assignments,
    scenario_from_dict,
    scenario_to_dict,
    with_overrides,
    with_values,
)
from deploysim.sim.scenario.deploys import Crashes, Platform
from deploysim.sim.scenario.lengths import Exponential, Fixed
from deploysim.sim.scenario.load import busy_workers, offered_load
from deploysim.sim.scenario.model import Fleet

README = Path(__file__).resolve().parents[1] / "README.md"
HOUR = 3600.0

BASE = {
    "name": "t",
    "horizon": "1d",
    "deploys": {"schedule": "poisson", "rate": "4/d"},
    "workload": {"arrivals": "poisson", "rate": "60/h", "length": "30s"},
}


def tables(**changes: dict) -> dict:
    d = copy.deepcopy(BASE)
    for table, values in changes.items():
        d[table] = values
    return d


def deploysim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deploysim.sim.cli", *args],
                          capture_output=True, text=True, timeout=300)


# -- 1. a key that does not apply ---------------------------------------------------------------


def test_every_on_poisson_deploys_names_the_key_that_applies():
    d = tables(deploys={"schedule": "poisson", "rate": "4/d", "every": "30m"})
    with pytest.raises(SimError) as info:
        scenario_from_dict(d, "t")
    assert str(info.value) == (
        'deploys.every: applies to schedule = "periodic"; this scenario\'s deploys are poisson: '
        'set deploys.rate (e.g. 2/h), or set deploys.schedule = "periodic" too'
    )


@pytest.mark.parametrize(
    ("deploys", "message"),
    [
        ({"schedule": "periodic", "every": "1h", "rate": "2/h"},
         r'^deploys\.rate: applies to schedule = "poisson" or "business-hours"; .* set '
         r"deploys\.every \(e\.g\. 30m\)"),
        ({"schedule": "poisson", "rate": "2/h", "times": ["1h"]},
         r'^deploys\.times: applies to schedule = "times"'),
        ({"schedule": "poisson", "rate": "2/h", "days": [0]},
         r'^deploys\.days: applies to schedule = "business-hours"'),
        ({"schedule": "periodic", "every": "1h", "hours": [9, 17]},
         r'^deploys\.hours: applies to schedule = "business-hours"'),
        ({"schedule": "poisson", "rate": "2/h", "phase": "5m"},
         r'^deploys\.phase: applies to schedule = "periodic"'),
        ({"schedule": "times", "times": ["1h"], "every": "1h"},
         r'^deploys\.every: .* set deploys\.times'),
        ({"schedule": "none", "batch_size": 2},
         r'^deploys\.batch_size: .*; this scenario has no deploys \(schedule = "none"\): set '
         r'deploys\.schedule = "periodic" too'),
    ],
)
def test_deploy_keys_apply_to_their_schedule_only(deploys, message):
    with pytest.raises(SimError, match=message):
        scenario_from_dict(tables(deploys=deploys), "t")


def test_workload_rate_and_count_apply_to_their_arrivals_only():
    with pytest.raises(SimError, match=r'^workload\.count: applies to arrivals = "backlog"; .*'
                                       r"set workload\.rate \(e\.g\. 300/h\)"):
        scenario_from_dict(tables(workload={**BASE["workload"], "count": 10}), "t")
    backlog = {"arrivals": "backlog", "count": 10, "rate": "1/h", "length": "1m"}
    with pytest.raises(SimError, match=r'^workload\.rate: applies to arrivals = "poisson"; .*'
                                       r"set workload\.count"):
        scenario_from_dict(tables(workload=backlog), "t")


def test_length_parameters_apply_to_their_kind_only():
    length = {"kind": "exponential", "mean": "1m", "median": "30s"}
    with pytest.raises(SimError, match=r'^workload\.length\.median: applies to kind = '
                                       r'"lognormal"; this length is exponential: set '
                                       r"workload\.length\.mean, or set"):
        scenario_from_dict(tables(workload={**BASE["workload"], "length": length}), "t")
    with pytest.raises(SimError, match=r"^workload\.length\.mean: .* set workload\.length\.median"
                                       r" and workload\.length\.sigma"):
        with_values(load_scenario("dora-elite"), {"workload.length.mean": "1m"})


def test_the_readme_mistake_fails_on_the_command_line_with_one_line():
    done = deploysim("run", "dora-elite", "--set", "deploys.every=30m")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "deploys.every: applies to schedule = \"periodic\"" in done.stderr
    assert "Traceback" not in done.stderr
    with pytest.raises(SimError, match=r"^deploys\.every: applies"):
        make_cells(["dora-elite"], {"deploys.every": ["1h", "4h"]})


def test_setting_the_schedule_too_switches_it():
    s = load_scenario("dora-elite")
    periodic = with_values(s, {"deploys.schedule": "periodic", "deploys.every": "30m"})
    assert periodic.deploys == Deploys("periodic", every=1800.0)
    back = with_values(periodic, {"deploys.schedule": "poisson", "deploys.rate": "2/h"})
    assert back.deploys == Deploys("poisson", rate=2 / HOUR)
    with pytest.raises(SimError, match=r"^deploys\.rate: schedule 'poisson' needs a rate"):
        with_values(periodic, {"deploys.schedule": "poisson"})
    exponential = with_values(s, {"workload.length.kind": "exponential",
                                  "workload.length.mean": "2m"})
    assert exponential.workload.classes[0].length == Exponential(120.0)
    poisson = with_values(load_scenario("backlog-backfill"),
                          {"workload.arrivals": "poisson", "workload.rate": "10/h"})
    assert (poisson.workload.rate, poisson.workload.count) == (10 / HOUR, None)
    # a whole table is the caller's: nothing in it is dropped
    with pytest.raises(SimError, match=r"^deploys\.every: applies"):
        with_values(periodic, {"deploys": {"schedule": "poisson", "rate": "2/h", "every": "1h"}})


def test_a_key_set_explicitly_is_not_dropped_with_a_stale_one():
    s = load_scenario("heroku-hourly")
    with pytest.raises(SimError, match=r"^deploys\.every: applies to schedule = \"periodic\""):
        with_values(s, {"deploys.schedule": "poisson", "deploys.rate": "2/h",
                        "deploys.every": "2h"})


@pytest.mark.parametrize("name", sorted(bundled_scenarios()))
def test_bundled_scenarios_survive_with_values_and_the_report_variants(name):
    s = load_scenario(name)
    assert with_values(s, {}) == s
    assert with_values(s, {"replications": 1, "horizon": 3600.0}).horizon == 3600.0
    if s.deploys.schedule == "periodic":  # the report's grid sets every on periodic deploys
        assert with_values(s, {"deploys.every": "2h"}).deploys.every == 7200.0


def test_fields_a_schedule_ignores_are_not_written_back():
    classes = (JobClass("default", 1.0, Lognormal(30.0, 1.0), 1.0),)
    s = Scenario(
        name="python", description="", seed=0, horizon=HOUR, replications=1, fleet=Fleet(),
        platform=Platform(), deploys=Deploys("poisson", rate=1 / HOUR, every=60.0, phase=5.0),
        crashes=Crashes(), workload=Workload("poisson", 0.01, 50, classes), strategies={},
    )
    d = scenario_to_dict(s)
    assert d["deploys"] == {"schedule": "poisson", "rate": "1/h"}
    assert "count" not in d["workload"]
    assert with_values(s, {"fleet.workers": 3}).deploys == Deploys("poisson", rate=1 / HOUR)


# -- 3. a rate says per what ------------------------------------------------------------------


def test_a_unitless_rate_in_a_file_is_an_error_showing_the_spellings(tmp_path):
    text = (
        'name = "t"\nhorizon = "1h"\n[deploys]\nschedule = "none"\n'
        '[workload]\narrivals = "poisson"\nrate = 300\nlength = "1s"\n'
    )
    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(SimError) as info:
        load_scenario(str(path))
    assert str(info.value).startswith('workload.rate: 300 has no unit; write e.g. "300/h", '
                                      '"300/min" or "300/s"')
    path.write_text(text.replace("rate = 300", 'rate = "300/h"'))
    assert load_scenario(str(path)).workload.rate == 300 / HOUR


def test_unitless_rates_as_text_are_errors_and_numbers_from_python_are_per_second():
    for key in ("deploys.rate", "workload.rate"):
        with pytest.raises(SimError, match=rf"^{re.escape(key)}: 300 has no unit"):
            with_overrides(load_scenario("dora-elite"), [f"{key}=300"])
        with pytest.raises(SimError, match=rf"^{re.escape(key)}: 2\.5 has no unit"):
            with_values(load_scenario("dora-elite"), {key: "2.5"})
    s = with_values(load_scenario("dora-elite"), {"workload.rate": 0.5, "deploys.rate": 0.001})
    assert (s.workload.rate, s.deploys.rate) == (0.5, 0.001)
    assert with_overrides(load_scenario("dora-elite"), ["workload.rate=5/min"]).workload.rate \
        == pytest.approx(5 / 60)
    with pytest.raises(SimError, match=r"^workload\.rate: 300 has no unit"):
        with_overrides(load_scenario("dora-elite"),
                       ["workload={arrivals='poisson', rate=300, length='1s'}"])


def test_no_bundled_scenario_writes_a_rate_without_a_unit():
    for name in bundled_scenarios():
        path = Path(load_scenario(name).name)  # loading checks it; the text says it too
        text = (Path(__file__).resolve().parents[1] / "sim/scenario/bundled"
                / f"{path}.toml").read_text()
        assert not re.search(r"^rate\s*=\s*[0-9]", text, re.M), name


def test_unitless_rate_on_the_command_line_exits_2_with_one_line():
    for args in (["run", "dora-elite", "--set", "workload.rate=300"],
                 ["sweep", "dora-elite", "--grid", "workload.rate=300,600"]):
        done = deploysim(*args)
        assert done.returncode == 2, done
        assert done.stderr.count("\n") == 1
        assert 'workload.rate: 300 has no unit; write e.g. "300/h"' in done.stderr


# -- 5. offered load ---------------------------------------------------------------------------


def _scenario(rate: float, classes: tuple[JobClass, ...], workers: int) -> Scenario:
    return Scenario(
        name="load", description="", seed=0, horizon=HOUR, replications=1,
        fleet=Fleet(workers=workers), platform=Platform(), deploys=Deploys("none"),
        crashes=Crashes(), workload=Workload("poisson", rate, None, classes), strategies={},
    )


def test_offered_load_is_rate_times_mean_length_over_workers():
    one = (JobClass("default", 1.0, Fixed(10.0), 1.0),)
    assert offered_load(_scenario(0.3, one, 2)) == pytest.approx(1.5)
    assert busy_workers(_scenario(0.3, one, 2)) == pytest.approx(3.0)
    # classes by weight: 3/4 of 10 s and 1/4 of 50 s = 20 s on average
    two = (JobClass("a", 3.0, Fixed(10.0), 1.0), JobClass("b", 1.0, Fixed(50.0), 1.0))
    assert offered_load(_scenario(0.1, two, 4)) == pytest.approx(0.5)
    assert offered_load(load_scenario("backlog-backfill")) is None


def test_the_readme_problem_scenario_was_overloaded():
    d = _readme_scenario()
    # what the example once had: 300 jobs an hour of 6.2 min on average, 31 busy workers for 20
    d["workload"]["rate"] = "300/h"
    d["workload"]["length"] = {"kind": "lognormal", "median": "2m", "sigma": 1.5}
    s = scenario_from_dict(d, "readme")
    assert offered_load(s) == pytest.approx(1.54, abs=0.01)
    assert busy_workers(s) == pytest.approx(30.8, abs=0.1)


def test_run_warns_before_an_overloaded_run_and_not_otherwise():
    short = ["--set", "horizon=20m", "--set", "replications=1", "--strategy", "sidekiq",
             "--quiet", "--json"]
    done = deploysim("run", "heroku-hourly", "--set", "workload.rate=2000/h", *short)
    assert done.returncode == 0, done.stderr
    assert done.stderr == (
        "deploysim: warning: offered load 5.50: 55 busy workers needed, 10 in the fleet; the "
        "queue will grow and completion rates will reflect the backlog, not the deploys\n"
    )
    calm = deploysim("run", "heroku-hourly", *short)
    assert calm.returncode == 0 and calm.stderr == ""


def test_sweep_warns_once_naming_the_worst_cell(tmp_path):
    done = deploysim("sweep", "heroku-hourly", "--grid", "workload.rate=100/h,2000/h,3000/h",
                     "--set", "horizon=10m", "--set", "replications=1", "--strategy", "sidekiq",
                     "--executor", "serial", "--quiet", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("deploysim: warning: offered load 8.24 in 2 of 3 cells (worst: "
                               "heroku-hourly workload.rate=3000/h: 83 busy workers needed, 10 in "
                               "the fleet)")


# -- the README's examples -------------------------------------------------------------------


def _readme_scenario() -> dict:
    text = README.read_text(encoding="utf-8")
    block = re.search(r'^```toml\n(name = "our-workers".*?)^```', text, re.S | re.M)
    assert block, "the README's example scenario"
    return tomllib.loads(block.group(1))


def test_the_readme_example_scenario_keeps_its_fleet_well_below_full_load():
    s = scenario_from_dict(_readme_scenario(), "our-workers.toml")
    load = offered_load(s)
    assert load is not None and load < 0.7
    assert s.fleet.workers == 20  # as its description says


def _readme_commands() -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    commands = re.findall(r"(?:^\$ |`)(deploysim (?:run|sweep) [^`\n]*)", text, re.M)
    return [c.split()[1:] for c in commands]


def test_the_readme_run_and_sweep_examples_use_keys_that_apply():
    commands = _readme_commands()
    assert any("--set" in c for c in commands) and any("--grid" in c for c in commands)
    checked = 0
    for args in commands:
        name = args[1]
        if name.endswith(".toml") or name.isupper() or name.startswith("-"):
            continue  # the README's own scenario (checked above), or the reference's syntax
        base = load_scenario(name)
        pairs = list(itertools.pairwise(args))
        sets = [value for flag, value in pairs if flag == "--set"]
        grid = dict(value.split("=", 1) for flag, value in pairs if flag == "--grid")
        base = with_overrides(base, sets)
        make_cells([base], {key: values.split(",") for key, values in grid.items()})
        checked += 1
    assert checked >= 2


# -- 6. progress -----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_plain_progress_prints_a_line_every_few_seconds_and_where_it_ended():
    clock, out = Clock(), io.StringIO()
    with Progress(40, "sweep", "cell", mode="auto", stream=out, every=5.0, clock=clock) as p:
        for step in range(40):
            clock.now = 1.6 * (step + 1)
            p.update()
    lines = out.getvalue().splitlines()
    assert lines[0] == "sweep: 4/40 cells, 6.4s"
    assert lines[-1] == "sweep: 40/40 cells, 1m 4s"
    assert len(lines) == 10  # one per 6.4 s; the last count was shown already


def test_short_work_and_quiet_mode_print_nothing():
    out = io.StringIO()
    with Progress(3, "run x", "run", mode="plain", stream=out, clock=Clock()) as p:
        p.update(3)
    clock = Clock()
    with Progress(3, "run x", "run", mode="quiet", stream=out, clock=clock) as p:
        clock.now = 100.0
        p.update(3)
    assert out.getvalue() == ""


def test_counter_shows_each_sweep_of_a_report_as_its_own_count():
    out = io.StringIO()
    show = counter("report", "cell", "plain", stream=out)
    for total in (2, 3):
        for done in range(1, total + 1):
            show(done, total)
    assert out.getvalue() == ""  # quick: no line at all
    assert format_elapsed(63.2) == "1m 3s" and format_elapsed(0.42) == "0.4s"
    assert format_elapsed(7384) == "2h 3m"


def test_run_progress_off_a_terminal_and_quiet(tmp_path):
    args = ["run", "heroku-hourly", "--set", "horizon=6h", "--set", "replications=2", "--json"]
    quiet = deploysim(*args, "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert deploysim(*args, "--quiet", "--progress").returncode == 2  # one or the other


# -- 7. --version ------------------------------------------------------------------------------


def test_version_prints_the_installed_version():
    from importlib.metadata import version

    done = deploysim("--version")
    assert done.returncode == 0
    assert done.stdout == f"deploysim {version('deploysim')}\n"


def test_parse_assignments_keeps_a_rate_text():
    assert parse_assignments(["workload.rate=300/h"]) == {"workload.rate": "300/h"}
