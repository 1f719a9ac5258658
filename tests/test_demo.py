"""The demo: interrupted by a real SIGINT, killed outright, resumed, each order totalled
exactly once, as read back from the SQLite file."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from deploysim.sim.demo import run_demo
from deploysim.sim.errors import SimError

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = """
import dataclasses, json, sys
from deploysim.sim.demo import run_demo
kwargs = json.loads(sys.argv[1])
summary = run_demo(report=lambda m: sys.stdout.write(m + "\\n"), progress=False, **kwargs)
sys.stdout.write("SUMMARY " + json.dumps(dataclasses.asdict(summary)) + "\\n")
"""


def _env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else "")}


def _demo(**kwargs: Any) -> tuple[list[str], dict[str, Any]]:
    """Run the demo in a fresh process; its messages and its summary."""
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(kwargs)],
        env=_env(), capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1].startswith("SUMMARY "), done.stdout
    return lines[:-1], json.loads(lines[-1].removeprefix("SUMMARY "))


def _count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as c:
        return int(c.execute(sql).fetchone()[0])


def test_sigint_interrupts_and_the_next_run_resumes_exactly_once(tmp_path: Path) -> None:
    db = str(tmp_path / "demo.db")
    messages, first = _demo(db_path=db, rows=200, item_time=0.01, interrupt_after=0.5)
    assert first["status"] == "interrupted" and first["reason"] == "signal SIGINT"
    position = first["position"]
    assert 0 < position < 200
    assert first["totals"] == position and first["duplicates"] == first["missing"] == 0
    assert any(m.startswith(f"interrupted at row {position} of 200") for m in messages)
    assert any(m.startswith("verified in") for m in messages)

    messages, second = _demo(db_path=db, rows=200, item_time=0.01)
    assert f"resumed at row {position} of 200, 0 duplicates" in messages
    assert second["status"] == "completed"
    assert second["resumed_at"] == position and second["items"] == 200 - position
    assert second["per_run"] == [position, 200 - position]
    assert (second["totals"], second["missing"], second["duplicates"], second["ahead"]) == (
        200, 0, 0, 0)
    assert any(
        re.match(r"verified in .*: each of the 200 orders done has exactly one total", m)
        for m in messages
    )
    assert _count(Path(db), "SELECT COUNT(DISTINCT order_id) FROM order_totals") == 200


def test_a_run_killed_outright_loses_its_open_batch_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    db = tmp_path / "demo.db"
    kwargs = {"db_path": str(db), "rows": 400, "item_time": 0.005}
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, json.dumps(kwargs)],
        env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait for the first batch of 100 to commit
            try:
                if _count(db, "SELECT COUNT(*) FROM order_totals") >= 100:
                    break
            except sqlite3.Error:
                pass
            time.sleep(0.02)
        time.sleep(0.2)  # into the next batch
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    committed = _count(db, "SELECT COUNT(*) FROM order_totals")
    assert 100 <= committed < 400

    messages, summary = _demo(**kwargs)
    assert summary["status"] == "completed"
    assert summary["resumed_at"] == committed
    assert f"resumed at row {committed} of 400, 0 duplicates" in messages
    assert (summary["totals"], summary["missing"], summary["duplicates"]) == (400, 0, 0)


def test_in_process_runs_complete_resume_and_reset(tmp_path: Path) -> None:
    db = str(tmp_path / "demo.db")
    messages: list[str] = []
    first = run_demo(db, rows=50, item_time=0, report=messages.append, progress=False)
    assert first.completed and first.exactly_once and first.per_run == (50,)
    assert messages[0] == f"created {db} with 50 orders to total up"

    messages.clear()
    again = run_demo(db, rows=50, item_time=0, report=messages.append, progress=False)
    assert again.completed and again.items == 0 and again.totals == 50
    assert any("already completed" in m for m in messages)

    with pytest.raises(SimError, match=r"rows=20: .* already holds 50 orders"):
        run_demo(db, rows=20, item_time=0, progress=False)

    fresh = run_demo(db, rows=20, item_time=0, reset=True, progress=False)
    assert fresh.completed and fresh.exactly_once and fresh.resumed_at is None
    assert (fresh.rows, fresh.totals, fresh.per_run) == (20, 20, (20,))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rows": 0}, "rows"),
        ({"rows": 2.5}, "rows"),
        ({"item_time": -1}, "item_time"),
        ({"interrupt_after": 0}, "interrupt_after"),
    ],
)
def test_bad_arguments_name_the_field(tmp_path: Path, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(SimError, match=f"^{field}="):
        run_demo(str(tmp_path / "demo.db"), progress=False, **kwargs)
    assert not (tmp_path / "demo.db").exists()
