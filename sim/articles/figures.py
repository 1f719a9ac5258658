"""What the analysis figures share: the style of a figure read in a notebook or an article, a
figure built without pyplot (so a library call leaves no global state behind), and grouped
bars on a log scale, one group per row label and one bar per strategy.

    fig = article_figure(9, 4)
    ax = fig.add_subplot()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from ..durations import humanize
from ..report.plots import STRATEGY_COLORS, strategy_style

__all__ = [
    "ARTICLE_STYLE",
    "article_figure",
    "duration_ticks",
    "grouped_bars",
    "strategy_order",
    "style_of",
]

#: Matplotlib settings of the analysis figures: light grid, no top or right spine, no frame
#: around legends, and a resolution that keeps a notebook small.
ARTICLE_STYLE: dict[str, Any] = {
    "figure.dpi": 80,
    "savefig.dpi": 80,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
}


def article_figure(width: float, height: float, **subplots: Any) -> tuple[Figure, Any]:
    """A figure in ``ARTICLE_STYLE`` and its axes (``Figure.subplots(**subplots)``)."""
    with rc_context(ARTICLE_STYLE):
        fig = Figure(figsize=(width, height), layout="constrained")
        axes = fig.subplots(**subplots)
    return fig, axes


def strategy_order(names: Sequence[str]) -> list[str]:
    """The built-in strategies in their usual order, then the variants in order of appearance."""
    names = list(dict.fromkeys(names))
    return [s for s in STRATEGY_COLORS if s in names] + [s for s in names
                                                         if s not in STRATEGY_COLORS]


def style_of(name: str, names: Sequence[str]) -> dict[str, Any]:
    """``strategy_style`` of ``name``, a variant getting the spare style of its rank among the
    variants of ``names``."""
    variants = [n for n in strategy_order(names) if n not in STRATEGY_COLORS]
    return strategy_style(name, variants.index(name) if name in variants else 0)


def duration_ticks(axis: Any, ticks: Sequence[float]) -> None:
    """Major ticks of a log-scale duration axis at ``ticks`` seconds, labelled "5m", "1h"."""
    axis.set_major_locator(FixedLocator(list(ticks)))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: humanize(v)))
    axis.set_minor_locator(NullLocator())


def grouped_bars(ax: Any, values: Any, title: str, ylabel: str, under: Any = None) -> None:
    """Bars of ``values`` (a DataFrame: one row per group, one column per strategy) on a log
    scale, one group per row; ``under``, of the same shape, is a part of each bar drawn darker
    inside it (the bar itself then pale). A bar at zero, which a log scale cannot draw, is
    marked "0" at the bottom; a missing one "-"."""
    groups, names = list(values.index), list(values.columns)
    width = 0.8 / len(names)
    for k, strategy in enumerate(names):
        colour = style_of(strategy, names)["color"]
        x = np.arange(len(groups)) + (k - (len(names) - 1) / 2) * width
        y = values[strategy].to_numpy(float)
        ax.bar(x, np.where(y > 0, y, np.nan), width, color=colour,
               alpha=1.0 if under is None else 0.35, label=strategy if under is None else None)
        if under is not None:
            part = under[strategy].to_numpy(float)
            ax.bar(x, np.where(part > 0, part, np.nan), width, color=colour, label=strategy)
        for xi, yi in zip(x, y, strict=True):
            if not yi > 0:
                ax.annotate("0" if yi == 0 else "-", (xi, 0.02), ha="center", va="bottom",
                            xycoords=("data", "axes fraction"), fontsize=8, color=colour,
                            fontweight="bold")
    ax.set_xticks(range(len(groups)), [str(g) for g in groups])
    ax.set_yscale("log")
    ax.set_title(title, fontsize=11)
    ax.set_ylabel(ylabel)
    ax.grid(axis="x", visible=False)
