"""Traces of real jobs and deploys: read with one-line errors that name the file and line,
replayed exactly by the simulator (the same jobs and deploys in every replication and run),
written back by the writers, and run end to end through the command line."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from deploysim.sim.errors import SimError
from deploysim.sim.fleet import replications
from deploysim.sim.scenario import (
    DeployTrace,
    JobClass,
    JobTrace,
    Workload,
    load_deploy_trace,
    load_scenario,
    read_deploy_trace,
    read_job_trace,
    scenario_from_dict,
    scenario_to_dict,
    with_values,
    write_deploy_trace,
    write_job_trace,
)
from deploysim.sim.scenario.deploys import Deploys, deploy_times

DATA = Path(__file__).resolve().parent / "data"
SCENARIO = DATA / "trace_scenario.toml"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


SCENARIO_TEXT = """
name = "replay"
seed = 5
horizon = "{horizon}"
replications = 3

[fleet]
workers = 2

[deploys]
schedule = "trace"
trace = "deploys.csv"

[workload]
arrivals = "trace"
trace = "jobs.csv"
{workload}
"""


def scenario_in(folder: Path, jobs: str, deploys: str = "at\n10m\n", *, horizon: str = "1d",
                workload: str = "") -> Path:
    write(folder, "jobs.csv", jobs)
    write(folder, "deploys.csv", deploys)
    return write(folder, "replay.toml", SCENARIO_TEXT.format(horizon=horizon, workload=workload))


# -- reading -----------------------------------------------------------------------------------


def test_a_job_trace_reads_numbers_and_duration_text():
    trace = read_job_trace(DATA / "trace_jobs.csv")
    assert trace.enqueued_at.tolist() == [0.0, 30.0, 120.0, 120.0, 3600.0]
    assert trace.duration.tolist() == [42.0, 5400.0, 3.5, 900.0, 2.5]
    assert trace.items.tolist() == [0, 5400, 0, 0, 3]  # 0: the class's item_time decides
    assert trace.classes.tolist() == ["report", "backfill", "report", "backfill", "report"]
    assert trace.origin is None
    assert trace.lines.tolist() == [2, 3, 4, 5, 6]
    assert not trace.duration.flags.writeable


def test_timestamps_become_offsets_from_the_first_row():
    trace = read_job_trace(DATA / "trace_jobs_stamped.csv")
    # a comment line comes first; naive times are UTC; +02:00 is converted
    assert trace.enqueued_at.tolist() == [0.0, 30.0, 3600.0, 3600.0]
    assert trace.origin == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert trace.lines.tolist() == [3, 4, 5, 6]


def test_a_deploy_trace_reads_times_and_labels():
    assert read_deploy_trace(DATA / "trace_deploys.csv").tolist() == [600.0, 2700.0, 7200.0]
    full = load_deploy_trace(DATA / "trace_deploys.csv")
    assert full.labels == ("v1.4.0", "v1.4.1", "v1.5.0")
    stamped = load_deploy_trace(DATA / "trace_deploys_stamped.csv")
    assert stamped.times == (0.0, 2400.0)
    assert stamped.origin == datetime(2024, 5, 1, 11, 50, tzinfo=UTC)


def test_blank_lines_a_byte_order_mark_and_upper_case_headers_are_fine(tmp_path):
    path = write(tmp_path, "jobs.csv", "\ufeffEnqueued_At, Duration\n\n0,1\n# a note\n5,2\n")
    trace = read_job_trace(path)
    assert trace.enqueued_at.tolist() == [0.0, 5.0]
    assert trace.classes.tolist() == ["", ""]


JOB_ERRORS = [
    ("enqueued_at,duration\n0,1\n5,-3\n", r"jobs\.csv line 3: duration: '-3' must be more than 0"),
    ("enqueued_at,duration\n0,0\n", r"jobs\.csv line 2: duration: '0' must be more than 0"),
    ("enqueued_at,duration\n0,long\n", r"line 2: duration: 'long' is not a duration"),
    ("enqueued_at,duration\n0,\n", r"line 2: duration: missing"),
    ("enqueued_at,duration\nyesterday,1\n", r"line 2: enqueued_at: 'yesterday' is not a time"),
    ("enqueued_at,duration\n-5,1\n", r"line 2: enqueued_at: '-5' must be 0 or more"),
    ("enqueued_at,duration\n,1\n", r"line 2: enqueued_at: missing"),
    ("enqueued_at,duration\n2024-05-01T12:00:00Z,1\n300,1\n",
     r"line 3: enqueued_at: '300' is an offset, but line 2 is a timestamp"),
    ("enqueued_at,duration,items\n0,1,2.5\n", r"line 2: items: '2\.5' must be a whole number"),
    ("enqueued_at,duration,items\n0,1,0\n", r"line 2: items: '0' must be a whole number >= 1"),
    ("enqueued_at,duration\n0,1,7\n", r"line 2: 3 cells, but the header names 2 columns"),
    ("enqueued_at,duration\n0,1\n1h,1\n30m,1\n",
     r"jobs\.csv line 4: enqueued_at: '30m' comes before line 3's '1h'; sort the rows"),
    ("enqueued_at,durration\n0,1\n",
     r"jobs\.csv line 1: unknown column 'durration'; did you mean 'duration'\?"),
    ("enqueued_at,duration,worker\n0,1,w1\n",
     r"line 1: unknown column 'worker'; columns are enqueued_at, duration, class, items"),
    ("enqueued_at,class\n0,a\n", r"line 1: no 'duration' column; a trace needs enqueued_at, dur"),
    ("0,1\n5,2\n", r"line 1: '0' is not a column name; the first line must be a header"),
    ("enqueued_at,duration,duration\n0,1,2\n", r"line 1: column 'duration' appears twice"),
    ("enqueued_at,duration\n", r"jobs\.csv has a header but no jobs below it"),
    ("", r"jobs\.csv is empty"),
]


@pytest.mark.parametrize(("text", "message"), JOB_ERRORS, ids=[m for _, m in JOB_ERRORS])
def test_a_bad_job_trace_is_one_line_naming_the_file_and_line(tmp_path, text, message):
    path = write(tmp_path, "jobs.csv", text)
    with pytest.raises(SimError, match=r"^workload\.trace: ") as caught:
        read_job_trace(path, shown="jobs.csv")
    assert len(str(caught.value).splitlines()) == 1
    assert caught.match(message)


DEPLOY_ERRORS = [
    ("at\n10m\n10m\n", r"deploys\.csv line 3: at: '10m' is the time of line 2 too"),
    ("at\n1h\n10m\n", r"deploys\.csv line 3: at: '10m' comes before line 2's '1h'"),
    ("at,tag\n1h,v1\n", r"line 1: unknown column 'tag'; columns are at, label"),
    ("at,lable\n1h,v1\n", r"line 1: unknown column 'lable'; did you mean 'label'\?"),
    ("at\nsoon\n", r"line 2: at: 'soon' is not a time"),
    ("at\n", r"deploys\.csv has a header but no deploys below it"),
]


@pytest.mark.parametrize(("text", "message"), DEPLOY_ERRORS, ids=[m for _, m in DEPLOY_ERRORS])
def test_a_bad_deploy_trace_is_one_line_naming_the_file_and_line(tmp_path, text, message):
    path = write(tmp_path, "deploys.csv", text)
    with pytest.raises(SimError, match=r"^deploys\.trace: ") as caught:
        load_deploy_trace(path, shown="deploys.csv")
    assert caught.match(message)


def test_a_missing_trace_names_the_path(tmp_path):
    with pytest.raises(SimError, match=rf"workload\.trace: file '{tmp_path}/nope\.csv' not found"):
        read_job_trace(tmp_path / "nope.csv")
    with pytest.raises(SimError, match=r"deploys\.trace: file .*nope\.csv' not found"):
        read_deploy_trace(tmp_path / "nope.csv")


# -- in a scenario -----------------------------------------------------------------------------


def test_a_scenario_reads_its_traces_from_its_own_folder(tmp_path):
    path = scenario_in(tmp_path, "enqueued_at,duration\n0,10\n1m,20\n", "at,label\n30s,v1\n")
    s = load_scenario(str(path))
    assert s.workload.arrivals == "trace"
    assert s.workload.trace is not None and s.workload.trace.source == str(tmp_path / "jobs.csv")
    assert s.deploys.trace is not None and s.deploys.trace.times == (30.0,)
    assert s.workload.classes[0].length is None
    assert s.workload.mean_length() == 15.0


def test_a_bad_row_in_a_scenario_names_the_file_as_written(tmp_path):
    path = scenario_in(tmp_path, "enqueued_at,duration\n0,1\n5,-3\n")
    with pytest.raises(SimError, match=r"^workload\.trace: jobs\.csv line 3: duration: '-3' must"):
        load_scenario(str(path))
    path = scenario_in(tmp_path, "enqueued_at,duration\n0,1\n", "at\n1h\n1h\n")
    with pytest.raises(SimError, match=r"^deploys\.trace: deploys\.csv line 3: at: '1h' is the"):
        load_scenario(str(path))


CLASSES = """
[[workload.classes]]
name = "report"
item_time = "2s"

[[workload.classes]]
name = "backfill"
item_time = "1m"
hang_probability = 0.5
"""


def test_classes_of_a_trace_must_name_the_scenarios_classes(tmp_path):
    path = scenario_in(tmp_path, "enqueued_at,duration,class\n0,1,report\n1,1,reprot\n",
                       workload=CLASSES)
    message = (r"^workload\.trace: jobs\.csv line 3: class: 'reprot' is not a job class of the "
               r"scenario; did you mean 'report'")
    with pytest.raises(SimError, match=message):
        load_scenario(str(path))
    path = scenario_in(tmp_path, "enqueued_at,duration\n0,1\n", workload=CLASSES)
    with pytest.raises(SimError, match=r"line 2: class: missing; this scenario has job classes "
                                       r"report, backfill: name one"):
        load_scenario(str(path))


def test_without_classes_the_class_column_is_free_text(tmp_path):
    path = scenario_in(tmp_path, "enqueued_at,duration,class\n0,1,anything\n")
    s = load_scenario(str(path))
    assert s.workload.trace is not None
    assert s.workload.trace.classes.tolist() == ["anything"]
    assert s.workload.trace_classes().tolist() == [0]


@pytest.mark.parametrize(
    ("workload", "message"),
    [
        ('rate = "10/h"', r"^workload\.rate: applies to arrivals = \"poisson\"; this scenario's "
                          r"arrivals are trace: set workload\.trace"),
        ("count = 5", r"^workload\.count: applies to arrivals = \"backlog\""),
        ('length = "30s"', r"^workload\.length: does not apply to workload\.arrivals = \"trace\""),
        ('[[workload.classes]]\nname = "a"\nweight = 2',
         r"^workload\.classes\[0\]\.weight: does not apply to workload\.arrivals = \"trace\""),
        ('[[workload.classes]]\nname = "a"\nlength = "1m"',
         r"^workload\.classes\[0\]\.length: does not apply"),
    ],
)
def test_keys_a_trace_makes_meaningless_are_refused(tmp_path, workload, message):
    path = scenario_in(tmp_path, "enqueued_at,duration\n0,1\n", workload=workload)
    with pytest.raises(SimError, match=message):
        load_scenario(str(path))


def test_trace_keys_apply_to_trace_choices_only(tmp_path):
    base = {"name": "x", "horizon": "1d", "deploys": {"schedule": "trace"},
            "workload": {"arrivals": "trace", "trace": str(DATA / "trace_jobs.csv")}}
    with pytest.raises(SimError, match=r"^deploys\.trace: schedule 'trace' needs a CSV"):
        scenario_from_dict(base, "test")
    no_jobs = {**base, "deploys": {"schedule": "none"}, "workload": {"arrivals": "trace"}}
    with pytest.raises(SimError, match=r"^workload\.trace: trace arrivals need a CSV of jobs"):
        scenario_from_dict(no_jobs, "test")
    periodic = {**base, "deploys": {"schedule": "periodic", "every": "1h", "trace": "d.csv"}}
    with pytest.raises(SimError, match=r"^deploys\.trace: applies to schedule = \"trace\"; this "
                                       r"scenario's deploys are periodic: set deploys\.every"):
        scenario_from_dict(periodic, "test")
    poisson = {**base, "deploys": {"schedule": "none"},
               "workload": {"arrivals": "poisson", "rate": 0.1, "length": 5, "trace": "j.csv"}}
    with pytest.raises(SimError, match=r"^workload\.trace: applies to arrivals = \"trace\""):
        scenario_from_dict(poisson, "test")


def test_traces_with_timestamps_share_one_origin(tmp_path):
    jobs = "enqueued_at,duration\n2024-05-01T12:00:00Z,1\n2024-05-01T12:10:00Z,1\n"
    deploys = "at\n2024-05-01T11:55:00Z\n2024-05-01T12:05:00Z\n"
    s = load_scenario(str(scenario_in(tmp_path, jobs, deploys)))
    assert s.deploys.trace is not None and s.workload.trace is not None
    assert s.deploys.trace.times == (0.0, 600.0)  # the earliest time of both is time 0
    assert s.workload.trace.enqueued_at.tolist() == [300.0, 900.0]
    assert s.workload.trace.origin == s.deploys.trace.origin


def test_a_trace_scenario_round_trips_through_its_tables(tmp_path):
    s = load_scenario(str(SCENARIO))
    d = scenario_to_dict(s)
    assert d["workload"]["trace"] == str(DATA / "trace_jobs.csv")
    assert d["deploys"] == {"schedule": "trace", "trace": str(DATA / "trace_deploys.csv")}
    assert all("length" not in c and "weight" not in c for c in d["workload"]["classes"])
    assert scenario_from_dict(d, "elsewhere") == s
    assert with_values(s, {"fleet.workers": 3}).workload == s.workload


def test_with_values_switches_to_and_from_a_trace():
    s = load_scenario(str(SCENARIO))
    poisson = with_values(s, {"workload.arrivals": "poisson", "workload.rate": "10/h",
                              "workload.classes.report.length": "30s",
                              "workload.classes.backfill.length": "1m",
                              "deploys.schedule": "periodic", "deploys.every": "1h"})
    assert poisson.workload.trace is None and poisson.deploys.trace is None
    back = with_values(poisson, {"workload.arrivals": "trace",
                                 "workload.trace": str(DATA / "trace_jobs.csv")})
    assert back.workload == s.workload


def test_a_trace_not_read_from_a_file_cannot_be_written():
    trace = JobTrace([0.0], [1.0], [0], [""])
    s = load_scenario(str(SCENARIO))
    workload = Workload("trace", None, None, (JobClass("default", 1.0, None, 1.0),), trace)
    with pytest.raises(SimError, match=r"^workload\.trace: the trace was not read from a file"):
        scenario_to_dict(replace(s, workload=workload))


def test_values_check_themselves():
    with pytest.raises(SimError, match=r"^JobTrace\.enqueued_at: must be sorted"):
        JobTrace([5.0, 1.0], [1.0, 1.0], [0, 0], ["", ""])
    with pytest.raises(SimError, match=r"^JobTrace\.duration: has 1 entries for 2 jobs"):
        JobTrace([0.0, 1.0], [1.0], [0, 0], ["", ""])
    with pytest.raises(SimError, match=r"^DeployTrace\.times: lists a deploy twice"):
        DeployTrace((1.0, 1.0))
    with pytest.raises(SimError, match=r"^Workload\.trace: trace arrivals need a CSV"):
        Workload("trace", None, None, (JobClass("default", 1.0, None, 1.0),))
    with pytest.raises(SimError, match=r"^Workload\.classes\[0\]\.length: poisson arrivals need"):
        Workload("poisson", 1.0, None, (JobClass("default", 1.0, None, 1.0),))
    trace = JobTrace([0.0], [1.0], [0], ["c"])
    with pytest.raises(SimError, match=r"^Workload\.trace: trace line 2: class 'c' is not one"):
        Workload("trace", None, None, (JobClass("a", 1.0, None, 1.0),), trace)


# -- replay ------------------------------------------------------------------------------------


def test_the_draws_are_the_trace_in_every_replication():
    s = load_scenario(str(SCENARIO))
    trace = read_job_trace(DATA / "trace_jobs.csv")
    for replication in range(3):
        draws = replications.draw(s, seed=replication + 11, replication=replication)
        assert draws.arrivals.tolist() == trace.enqueued_at.tolist()
        assert draws.lengths.tolist() == trace.duration.tolist()
        # items from the trace where given, else round(duration / item_time) (1s here)
        assert draws.items.tolist() == [42, 5400, 4, 900, 3]
        assert draws.deploys.tolist() == [600.0, 2700.0, 7200.0]


def test_items_default_from_the_class_and_hangs_from_its_probability(tmp_path):
    jobs = "enqueued_at,duration,class,items\n0,10m,backfill,\n0,10m,report,\n0,10m,report,7\n"
    s = load_scenario(str(scenario_in(tmp_path, jobs * 1, workload=CLASSES)))
    draws = replications.draw(s, 1, 0)
    assert draws.items.tolist() == [10, 300, 7]
    many = "enqueued_at,duration,class\n" + "0,1,backfill\n0,1,report\n" * 2000
    s = load_scenario(str(scenario_in(tmp_path, many, workload=CLASSES)))
    hangs = replications.draw(s, 1, 0).hangs
    assert not hangs[1::2].any()  # report never hangs
    assert 0.45 < hangs[0::2].mean() < 0.55  # backfill: 0.5


def test_jobs_and_deploys_after_the_horizon_never_come(tmp_path):
    jobs = "enqueued_at,duration\n0,1\n59m,1\n1h,1\n2h,1\n"
    s = load_scenario(str(scenario_in(tmp_path, jobs, "at\n30m\n1h\n", horizon="1h")))
    draws = replications.draw(s, 1, 0)
    assert draws.arrivals.tolist() == [0.0, 3540.0]
    assert draws.lengths.tolist() == [1.0, 1.0]
    assert draws.deploys.tolist() == [1800.0]


def test_deploy_times_of_a_trace_are_exact_and_ignore_the_generator():
    deploys = Deploys("trace", trace=DeployTrace((1.5, 60.0, 7200.0)))
    for seed in (1, 2):
        times = deploy_times(deploys, np.random.default_rng(seed), 3600.0)
        assert times.tolist() == [1.5, 60.0]


def test_a_trace_run_is_the_same_run_every_time():
    s = load_scenario(str(SCENARIO))
    first = replications.run(s, processes=1).to_dict()
    again = replications.run(s, processes=1).to_dict()
    assert first == again
    for result in first["strategies"].values():
        assert result["enqueued"] == 5
        assert result["deploys"] == 3


# -- writing -----------------------------------------------------------------------------------


def test_written_traces_read_back(tmp_path):
    times = np.array([0.0, 0.1, 30.25, 3600.0])
    path = write_job_trace(tmp_path / "jobs.csv", times, [1.5, 2.0, 0.001, 10.0],
                           items=[0, 2, 1, 0], classes=["a", "b", "a", ""])
    back = read_job_trace(path)
    assert back.enqueued_at.tolist() == times.tolist()
    assert back.duration.tolist() == [1.5, 2.0, 0.001, 10.0]
    assert back.items.tolist() == [0, 2, 1, 0]
    assert back.classes.tolist() == ["a", "b", "a", ""]
    plain = read_job_trace(write_job_trace(tmp_path / "plain.csv", [0, 1], [1, 1]))
    assert plain.items.tolist() == [0, 0]
    assert (tmp_path / "plain.csv").read_text().splitlines()[0] == "enqueued_at,duration"


def test_written_timestamps_read_back_to_the_microsecond(tmp_path):
    origin = datetime(2024, 5, 1, 12, tzinfo=UTC)
    path = write_job_trace(tmp_path / "jobs.csv", [0.0, 90.5], [1.0, 1.0], origin=origin)
    assert "2024-05-01T12:01:30.500000+00:00" in path.read_text()
    back = read_job_trace(path)
    assert back.origin == origin and back.enqueued_at.tolist() == [0.0, 90.5]
    deploys = write_deploy_trace(tmp_path / "deploys.csv", [5.0, 65.0], labels=["v1", "v2"],
                                 origin=origin)
    full = load_deploy_trace(deploys)
    assert full.times == (0.0, 60.0)  # offsets from the file's own first time
    assert full.origin == datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC)
    assert full.labels == ("v1", "v2")


def test_writers_check_before_writing(tmp_path):
    with pytest.raises(SimError, match=r"^JobTrace\.duration: must be finite seconds > 0"):
        write_job_trace(tmp_path / "jobs.csv", [0.0], [0.0])
    with pytest.raises(SimError, match=r"^DeployTrace\.times: must be sorted"):
        write_deploy_trace(tmp_path / "deploys.csv", [5.0, 1.0])
    assert not any(tmp_path.iterdir())


# -- the command line --------------------------------------------------------------------------


def deploysim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deploysim.sim.cli", *args], capture_output=True,
                          text=True, timeout=300)


def test_the_command_line_runs_a_trace_scenario():
    done = deploysim("run", str(SCENARIO), "--quiet")
    assert done.returncode == 0, done.stderr
    assert "5 jobs, 3 deploys" in done.stdout


def test_a_bad_trace_exits_2_with_one_line(tmp_path):
    path = scenario_in(tmp_path, "enqueued_at,duration\n0,1\n5,-3\n")
    done = deploysim("run", str(path), "--quiet")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == ["deploysim: error: workload.trace: jobs.csv line 3: duration: '-3' must be "
                     "more than 0"]


def test_a_real_runs_jobs_and_deploys_replay_through_trace_files(tmp_path):
    """The real-systems calibration hands the simulator a run's jobs and deploys as trace files,
    which a scenario can replay as well: the times come back to the microsecond."""
    from deploysim.sim.chaos.real.calibrate import replay_traces

    audit = {"system": "rq", "started_at": 1_764_633_600.25,
             "timeline": {"job_lengths_s": [2.561234, 2.57, 2.6], "deploys": [4.8912, 11.9],
                          "crashes": [], "end_s": 45.0}}
    replayed = replay_traces(audit, tmp_path, "rq-seed1", items=10)
    jobs, deploys = tmp_path / "rq-seed1-jobs.csv", tmp_path / "rq-seed1-deploys.csv"
    assert jobs.read_text().splitlines()[0] == "enqueued_at,duration,class,items"
    assert "2025-12-02T00:00:00.250000+00:00" in jobs.read_text()  # the run's own start
    assert replayed["timeline"]["job_lengths_s"] == pytest.approx([2.561234, 2.57, 2.6],
                                                                  abs=1e-6)
    assert replayed["timeline"]["deploys"] == pytest.approx([4.8912, 11.9], abs=1e-6)
    assert replayed["timeline"]["end_s"] == 45.0 and audit["timeline"]["deploys"] == [4.8912,
                                                                                     11.9]
    s = load_scenario(str(scenario_in(tmp_path, jobs.read_text(), deploys.read_text())))
    assert s.workload.trace is not None and s.deploys.trace is not None
    assert s.workload.trace.items.tolist() == [10, 10, 10]
    assert list(s.deploys.trace.times) == pytest.approx([4.8912, 11.9], abs=1e-6)
