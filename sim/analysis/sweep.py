"""Sweeps: scenarios x strategies x a grid of parameter values, one row per cell and strategy.

Each cell is a scenario with some values overridden (any key ``--set`` takes: ``deploys.every``,
``workload.length.median``, ``platform.grace``, ``strategies.resumable.checkpoint_every``...). A
cell's seed is derived from its scenario's seed and its own values, not from its position, so a
cell gives the same numbers whatever else the sweep holds. Within a cell every strategy meets
the same jobs, deploys and crashes.

    df = run_sweep(["dora-elite"], {"deploys.every": ["1h", "4h"]}, ["sidekiq", "resumable"])

Cells run in parallel on all cores (``executor="processes"``), in this process (``"serial"``),
or on a Dask cluster (``"dask"``, with ``scheduler`` the address of one; without it a local
cluster is started). The numbers do not depend on the executor.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

from ..errors import SimError
from ..executors import EXECUTORS, check_executor, run_all
from ..progress import MODES, Progress
from ..scenario import Scenario, load_scenario, with_values

__all__ = [
    "EXECUTORS",
    "Cell",
    "cell_seed",
    "flatten",
    "make_cells",
    "numeric_columns",
    "run_cell",
    "run_sweep",
    "save",
]


@dataclass(frozen=True)
class Cell:
    """One point of a sweep: a scenario, the values set on it, and the seed they imply."""

    scenario: Scenario
    values: tuple[tuple[str, Any], ...]
    seed: int

    @property
    def label(self) -> str:
        """``name key=value ...``, for progress and errors."""
        return " ".join([self.scenario.name, *(f"{k}={v}" for k, v in self.values)])


def cell_seed(base: int, values: Iterable[tuple[str, Any]]) -> int:
    """A seed from a scenario's seed and a cell's values: stable across runs and machines."""
    text = json.dumps([base, [[k, str(v)] for k, v in values]])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def make_cells(
    scenarios: Sequence[str | Scenario], grid: Mapping[str, Sequence[Any]]
) -> list[Cell]:
    """Every scenario with every combination of the grid's values (validated up front, so a bad
    key or value fails before anything runs)."""
    for key, values in grid.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise SimError(f"sweep grid {key}: give a non-empty list of values, got {values!r}")
    keys = list(grid)
    cells = []
    for item in scenarios:
        base = load_scenario(item) if isinstance(item, str) else item
        for combo in product(*(grid[k] for k in keys)):
            values = tuple(zip(keys, combo, strict=True))
            scenario = with_values(base, dict(values), f"{base.name} with {values}")
            cells.append(Cell(scenario, values, cell_seed(base.seed, values)))
    return cells


def run_cell(cell: Cell, strategies: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Run one cell in this process: one flat row per strategy."""
    from ..fleet import replications as simulator

    result = simulator.run(cell.scenario, strategies, seed=cell.seed, processes=1)
    rows = []
    for name, r in result.strategies.items():
        row: dict[str, Any] = {"scenario": cell.scenario.name, "strategy": name,
                               "seed": cell.seed, **dict(cell.values)}
        row.update(flatten(r))
        rows.append(row)
    return rows


def flatten(result: Mapping[str, Any]) -> dict[str, Any]:
    """A RESULT as one flat row: ``sojourn_s.p50`` becomes ``sojourn_s_p50``; ``by_length`` and
    confidence intervals are left out (``ci95`` as ``*_ci_lo``/``*_ci_hi``)."""
    out: dict[str, Any] = {}
    for key, value in result.items():
        if key == "by_length":
            continue
        if key == "ci95":
            for k, (lo, hi) in value.items():
                out[f"{k}_ci_lo"], out[f"{k}_ci_hi"] = lo, hi
        elif isinstance(value, Mapping):
            for k, v in value.items():
                out[f"{key}_{k}"] = v
        else:
            out[key] = value
    return out


def run_sweep(
    scenarios: Sequence[str | Scenario],
    grid: Mapping[str, Sequence[Any]],
    strategies: Sequence[str] | None = None,
    *,
    executor: str = "processes",
    processes: int | None = None,
    scheduler: str | None = None,
    progress: bool | str | Callable[[int, int], None] = True,
) -> Any:
    """Run every cell for every strategy; return a pandas DataFrame, one row per cell and
    strategy, in cell order whatever order the cells finished in.

    ``progress`` is shown on stderr (``deploysim.sim.progress``): True is ``"auto"`` (a bar on
    a terminal, a plain line every few seconds elsewhere), False is ``"quiet"``, ``"plain"``
    forces the lines; a callable is called as ``progress(done, total)`` after each cell."""
    import pandas as pd

    check_executor(executor)
    cells = make_cells(scenarios, grid)
    if strategies:  # fail on a bad name before any work
        from ..fleet.replications import strategies_of

        for cell in cells[:1]:
            strategies_of(cell.scenario, strategies)
    tick = _ticker(len(cells), progress)
    try:
        # a single cell runs here: no pool or cluster is worth starting for it
        rows = run_all(run_cell, [(cell, strategies) for cell in cells],
                       executor=executor if len(cells) > 1 else "serial",
                       processes=processes, scheduler=scheduler, on_done=lambda _i: tick())
    finally:
        tick.close()  # type: ignore[attr-defined]
    return pd.DataFrame([row for group in rows for row in group])


def _ticker(total: int, progress: bool | str | Callable[[int, int], None]) -> Any:
    if callable(progress):
        done = [0]

        def tick() -> None:
            done[0] += 1
            progress(done[0], total)

        tick.close = lambda: None  # type: ignore[attr-defined]
        return tick
    if isinstance(progress, str) and progress not in MODES:
        raise SimError(f"run_sweep progress: {progress!r}; use True, False, a callable or one "
                       f"of {', '.join(MODES)}")
    mode = progress if isinstance(progress, str) else "auto" if progress else "quiet"
    shown = Progress(total, "sweep", "cell", mode=mode)

    def tick_shown() -> None:
        shown.update(1)

    tick_shown.close = shown.close  # type: ignore[attr-defined]
    return tick_shown


def numeric_columns(df: Any) -> Any:
    """Columns of numbers held as objects (a RESULT's None, e.g. the drain of a run without
    deploys) as floats, so that every number is written to the same precision."""
    import pandas as pd

    df = df.copy()
    for column in df.columns:
        if df[column].dtype == object:
            try:
                df[column] = pd.to_numeric(df[column])
            except (TypeError, ValueError):
                pass  # text: names, grid values
    return df


def save(df: Any, out_dir: str | Path, stem: str = "results") -> tuple[Path, Path]:
    """Write the sweep's rows as ``stem.csv`` (numbers to 10 significant digits) and
    ``stem.json`` (the same rows as read back from the CSV, one object per line, without
    empty fields) in ``out_dir``."""
    import pandas as pd

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out / f"{stem}.csv", out / f"{stem}.json"
    numeric_columns(df).to_csv(csv_path, index=False, float_format="%.10g")
    back = pd.read_csv(csv_path, dtype=dict.fromkeys(_text_columns(df), str))
    lines = []
    for record in back.to_dict(orient="records"):
        row = {k: (v.item() if hasattr(v, "item") else v) for k, v in record.items()
               if not (v is None or (isinstance(v, float) and v != v))}
        lines.append(json.dumps(row, allow_nan=False))
    json_path.write_text("[\n" + ",\n".join(lines) + "\n]\n", encoding="utf-8")
    return csv_path, json_path


def _text_columns(df: Any) -> list[str]:
    """Columns that hold text in ``df`` (grid values such as "1h" stay text when read back)."""
    return [c for c in df.columns
            if df[c].dtype == object and df[c].map(lambda v: isinstance(v, str)).any()]
