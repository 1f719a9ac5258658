"""Sweeps: per-cell seeds, executors that agree, files, and the command line's errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from deploysim.sim import executors
from deploysim.sim.analysis.sweep import EXECUTORS, make_cells, run_sweep, save
from deploysim.sim.errors import SimError

SMALL = {"horizon": ["6h"], "replications": [1]}


def _sweep(grid: dict, executor: str = "serial", **kwargs: object) -> pd.DataFrame:
    kwargs.setdefault("progress", False)
    return run_sweep(["dora-elite"], {**SMALL, **grid}, ["sidekiq", "resumable"],
                     executor=executor, **kwargs)


def test_a_cell_seed_depends_on_its_values_not_on_the_rest_of_the_grid() -> None:
    alone = make_cells(["dora-elite"], {"deploys.rate": ["4/d"]})
    among = make_cells(["dora-elite"], {"deploys.rate": ["1/d", "4/d", "16/d"]})
    assert alone[0].seed == among[1].seed
    assert len({c.seed for c in among}) == 3


def test_one_row_per_cell_and_strategy_with_the_grid_values_as_columns() -> None:
    df = _sweep({"deploys.rate": ["2/d", "40/d"]})
    assert list(df["strategy"]) == ["sidekiq", "resumable"] * 2
    assert list(df["deploys.rate"]) == ["2/d", "2/d", "40/d", "40/d"]
    assert (df["enqueued"] == df["completed"] + df["failed"] + df["lost"] + df["pending"]).all()
    # the same cell and seed, run again on its own, gives the same numbers
    again = _sweep({"deploys.rate": ["40/d"]})
    pd.testing.assert_frame_equal(df.iloc[2:].reset_index(drop=True), again)


def test_processes_and_dask_give_what_serial_gives() -> None:
    grid = {"deploys.rate": ["4/d", "24/d"]}
    serial = _sweep(grid)
    pd.testing.assert_frame_equal(serial, _sweep(grid, "processes", processes=2))
    pytest.importorskip("dask.distributed")
    pd.testing.assert_frame_equal(serial, _sweep(grid, "dask"))


def test_save_writes_csv_and_json_with_every_row(tmp_path) -> None:  # type: ignore[no-untyped-def]
    df = _sweep({"deploys.rate": ["4/d"]})
    csv_path, json_path = save(df, tmp_path / "out")
    assert len(pd.read_csv(csv_path)) == len(df) == len(json.loads(json_path.read_text()))


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"deploys.evry": ["1h"]}, "deploys.evry: unknown key; did you mean 'every'?"),
        ({"deploys.every": "1h"}, "sweep grid deploys.every: give a non-empty list"),
        ({"deploys.every": ["soon"]}, "deploys.every: 'soon' is not a duration"),
    ],
)
def test_a_bad_grid_fails_before_anything_runs(grid: dict, message: str) -> None:
    with pytest.raises(SimError, match=message.replace("?", r"\?")):
        run_sweep(["dora-elite"], grid, progress=False)


@pytest.mark.parametrize("progress", [True, "plain"])
def test_progress_off_a_terminal_is_plain_lines_on_stderr(
    progress: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("deploysim.sim.progress.PLAIN_EVERY", 0.0)  # a line for every cell
    _sweep({"deploys.rate": ["4/d", "24/d"]}, progress=progress)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(",")[0] for line in lines] == ["sweep: 1/2 cells", "sweep: 2/2 cells"]


def test_progress_false_or_quiet_says_nothing_and_a_callable_is_called(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("deploysim.sim.progress.PLAIN_EVERY", 0.0)
    calls: list[tuple[int, int]] = []
    for progress in (False, "quiet", lambda done, total: calls.append((done, total))):
        _sweep({"deploys.rate": ["4/d", "24/d"]}, progress=progress)
    assert capsys.readouterr().err == ""
    assert calls == [(1, 2), (2, 2)]
    with pytest.raises(SimError, match="run_sweep progress: 'loud'"):
        _sweep({"deploys.rate": ["4/d"]}, progress="loud")


def test_an_unknown_executor_is_named() -> None:
    with pytest.raises(SimError, match="executor: 'threads' is not one of"):
        run_sweep(["dora-elite"], {"deploys.every": ["1h"]}, executor="threads", progress=False)
    assert EXECUTORS is executors.EXECUTORS  # one list of executors, importable from here too


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grid", "deploys.every"], "--grid 'deploys.every': write KEY=VALUE,VALUE"),
        (["--grid", "deploys.every=1x"], "deploys.every: '1x' is not a duration"),
        ([], "--grid: give at least one"),
    ],
)
def test_the_command_line_says_what_is_wrong_in_one_line(args: list[str], message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "deploysim.sim.cli", "sweep", "dora-elite", *args],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
