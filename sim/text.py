"""Text a person reads: aligned tables for the terminal and Markdown tables for reports.

One place for both. Cells are given as text already formatted; numbers are never re-parsed,
so "1,234" and "99.0%" stay as written. Markdown tables come from ``tabulate``; terminal tables
are laid out here, because tabulate pads every head by two characters, which widens the
columns a person scans (the gap between columns is exactly two spaces).
"""

from __future__ import annotations

from collections.abc import Sequence

from tabulate import tabulate

__all__ = ["markdown_table", "text_table"]


def _align(columns: int, right: int | Sequence[bool]) -> tuple[str, ...]:
    if isinstance(right, int):
        return tuple("left" if i < right else "right" for i in range(columns))
    return tuple("right" if r else "left" for r in right)


def text_table(head: Sequence[str], rows: Sequence[Sequence[str]],
               right: int | Sequence[bool] = 1) -> str:
    """A plain-text table with a rule under the head. ``right``: the first right-aligned
    column (those before it are left-aligned), or one flag per column."""
    align = _align(len(head), right)
    grid = [list(head), *([str(c) for c in r] for r in rows)]
    widths = [max(len(row[i]) for row in grid) for i in range(len(head))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if a == "right" else c.ljust(w)
                         for c, w, a in zip(cells, widths, align, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(grid[0]), rule, *(line(row) for row in grid[1:])])


def markdown_table(head: Sequence[str], rows: Sequence[Sequence[str]],
                   right: int | Sequence[bool] = 1) -> str:
    """A Markdown (pipe) table, aligned as ``text_table``."""
    return tabulate([list(r) for r in rows], headers=list(head), tablefmt="pipe",
                    colalign=_align(len(head), right), disable_numparse=True)
