"""Text a person reads: aligned tables for the terminal and Markdown tables for reports.

One place for both, on top of ``tabulate``. Cells are given as text already formatted; numbers
are never re-parsed, so "1,234" and "99.0%" stay as written.
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
    table = tabulate([list(r) for r in rows], headers=list(head), tablefmt="simple",
                     colalign=_align(len(head), right), disable_numparse=True)
    return "\n".join(line.rstrip() for line in table.splitlines())


def markdown_table(head: Sequence[str], rows: Sequence[Sequence[str]],
                   right: int | Sequence[bool] = 1) -> str:
    """A Markdown (pipe) table, aligned as ``text_table``."""
    return tabulate([list(r) for r in rows], headers=list(head), tablefmt="pipe",
                    colalign=_align(len(head), right), disable_numparse=True)
