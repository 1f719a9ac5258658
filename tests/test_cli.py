"""The command line as a user meets it: the JSON contract, the table, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from deploysim.sim.fleet.results import DrainStats, Intervals, LengthBucket, Result, Stats

RESULT_KEYS = {
    "enqueued", "completed", "failed", "lost", "pending", "completion_rate", "executions",
    "duplicate_item_executions", "useful_work_s", "wasted_work_s", "run_time_s", "sojourn_s",
    "drain_s", "deploys", "hard_kills", "by_length",
}
SHORT = ["--set", "horizon=12h", "--set", "replications=2"]


def deploysim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deploysim.sim.cli", *args], capture_output=True,
                          text=True, timeout=300)


def test_run_json_follows_the_documented_shape() -> None:
    done = deploysim("run", "heroku-hourly", "--json", "--seed", "3", *SHORT)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert set(out) == {"scenario", "seed", "horizon_s", "strategies"}
    assert out["seed"] == 3 and out["horizon_s"] == 12 * 3600
    assert set(out["strategies"]) == {"sidekiq", "resque", "celery", "rq", "dramatiq", "split",
                                      "resumable"}
    for result in out["strategies"].values():
        assert set(result) >= RESULT_KEYS
        assert set(result["sojourn_s"]) == {"mean", "p50", "p90", "p99", "max"}
        assert set(result["drain_s"]) == {"p50", "max"}
        # the typed shape says what the JSON holds, no more and no less
        assert set(result) == Result.__required_keys__ | Result.__optional_keys__
        assert set(result["run_time_s"]) == set(result["sojourn_s"]) == Stats.__required_keys__
        assert set(result["drain_s"]) == DrainStats.__required_keys__
        assert set(result["ci95"]) == Intervals.__required_keys__
        assert all(set(b) == LengthBucket.__required_keys__ for b in result["by_length"])
        assert result["replications"] == 2 and "completion_rate" in result["ci95"]
        lo, hi = result["ci95"]["completion_rate"]
        assert lo <= result["completion_rate"] <= hi
        assert sum(b["enqueued"] for b in result["by_length"]) == pytest.approx(
            result["enqueued"])  # means over both replications, as the headline counts


def test_the_same_seed_prints_the_same_json() -> None:
    args = ("run", "fly-5s", "--json", "--strategy", "sidekiq", *SHORT)
    assert deploysim(*args).stdout == deploysim(*args).stdout


def test_the_table_names_every_strategy_and_the_scenario() -> None:
    done = deploysim("run", "dora-elite", "--strategy", "resque", "--strategy", "resumable",
                     *SHORT)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("dora-elite: ")
    assert any(line.startswith("resque ") for line in lines)
    assert any(line.startswith("resumable ") for line in lines)
    assert not any(line.startswith("sidekiq ") for line in lines)
    head = next(i for i, line in enumerate(lines) if line.startswith("strategy "))
    assert lines[head].split("  ")[0] == "strategy" and "hard kills" in lines[head]
    assert set(lines[head + 1]) == {"-", " "}  # a rule under the head


def test_scenarios_lists_the_bundled_set() -> None:
    out = json.loads(deploysim("scenarios", "--json").stdout)
    assert {"heroku-hourly", "shopify-40-a-day", "dora-elite", "business-hours",
            "pareto-heavy-tail"} <= set(out)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "no-such-scenario"], "no bundled scenario 'no-such-scenario'"),
        (["run", "dora-elite", "--strategy", "sidekik"], "did you mean 'sidekiq'?"),
        (["run", "dora-elite", "--set", "fleet.workers=0"], "fleet.workers"),
        (["run", "dora-elite", "--set", "deploys.evry=1h"], "did you mean 'every'?"),
        (["run", "dora-elite", "--set", "strategies.sidekiq.timout=3s"],
         "strategies.sidekiq.timout: unknown parameter; did you mean 'timeout'?"),
        (["run", "dora-elite", "--set", "novalue"], "novalue"),
        (["run", "/nonexistent/path.toml"], "/nonexistent/path.toml"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["demo", "--rows", "0"], "rows"),
        (["chaos", "--grace", "5x"], "--grace: '5x' is not a duration"),
        (["chaos", "--strategy", "nope"], "--strategy: 'nope' is unknown"),
        (["calibrate", "--workers", "0"], "--workers"),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_it(args: list[str], message: str) -> None:
    done = deploysim(*args)
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert message in lines[0]
    assert "Traceback" not in done.stderr
