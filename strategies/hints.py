""""Did you mean" hints for names people type: scenario keys, strategy names and parameters.

The one place that suggests the nearest valid name, shared by the strategies and the simulator
(standard library only, so the engine's side of the house can use it too).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["did_you_mean"]


def did_you_mean(
    word: object,
    choices: Iterable[str],
    known: str = "known",
    *,
    sep: str = ": ",
    always: bool = False,
) -> str:
    """A hint for an unknown ``word``: "did you mean 'x'?" for the nearest of ``choices``, or,
    when none is near, "``known``: a, b, c" (every choice; ``sep`` goes between ``known`` and
    the list). ``always`` puts the list after the suggestion too: "did you mean 'x'? known: a"."""
    names = list(choices)
    near = difflib.get_close_matches(str(word), names, n=1)
    listing = f"{known}{sep}{', '.join(names)}"
    if not near:
        return listing
    suggestion = f"did you mean '{near[0]}'?"
    return f"{suggestion} {listing}" if always else suggestion
