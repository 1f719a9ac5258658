"""``results.csv`` and ``results.json``: the rows of the report in their order, written and read
back. Everything downstream (plots, findings, README) reads the rows as read back from the CSV,
so it sees exactly what is on disk.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ..analysis.sweep import numeric_columns, save
from .plan import PARTS, STRATEGY_ORDER

__all__ = ["ID_COLUMNS", "TEXT_COLUMNS", "as_written", "order_rows", "read_results",
           "write_results"]

#: Columns naming a row (before the RESULT fields of ``deploysim.sim.analysis.sweep.flatten``).
ID_COLUMNS = (
    "part",
    "scenario",
    "strategy",
    "seed",
    "deploys.every",
    "strategies.resumable.checkpoint_every",
    "length_s",
    "deploys_per_day",
    "checkpoint_every_s",
    "horizon_s",
    "t_s",
    "completed_within_fraction",
)

#: Grid values, read back as the text the sweep wrote ("1h 30m"), not as numbers.
TEXT_COLUMNS = ("deploys.every", "strategies.resumable.checkpoint_every")

#: Rows are sorted by part, then by these columns.
_SORT_KEYS = ("length_s", "deploys_per_day", "scenario", "checkpoint_every_s", "_strategy",
              "t_s")


def order_rows(df: Any) -> Any:
    """Rows by part, then by the values that vary in it; columns ids first."""
    rank = {name: i for i, name in enumerate(STRATEGY_ORDER)}
    df = df.assign(
        _part=df["part"].map({p: i for i, p in enumerate(PARTS)}),
        _strategy=df["strategy"].map(rank),
    )
    df = df.sort_values(["_part", *_SORT_KEYS], kind="stable", na_position="first").drop(
        columns=["_part", "_strategy"])
    ids = [c for c in ID_COLUMNS if c in df.columns]
    rest = [c for c in df.columns if c not in ids]
    return df[ids + rest].reset_index(drop=True)


def write_results(df: Any, out_dir: str | Path) -> Any:
    """Write ``results.csv`` and ``results.json`` (``deploysim.sim.analysis.sweep.save``);
    return the rows as read back from the CSV."""
    csv_path, _ = save(df, out_dir)
    return read_results(csv_path)


def read_results(path: Any) -> Any:
    """``results.csv`` (a path or an open text file) as a DataFrame, grid values as text as
    the sweep wrote them."""
    import pandas as pd

    return pd.read_csv(path, dtype=dict.fromkeys(TEXT_COLUMNS, str))


def as_written(df: Any) -> Any:
    """The rows of ``df`` as ``results.csv`` would hold them, read back: numbers to the
    precision written, to compare with a report on disk."""
    text = io.StringIO()
    numeric_columns(df).to_csv(text, index=False, float_format="%.10g")
    text.seek(0)
    return read_results(text)
