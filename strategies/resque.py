"""Resque (3.0) shutdown, after the "Resque, QUIT" and "Resque, TERM" rows of docs/semantics.md.

``mode = "quit"``: the worker finishes the job in hand however long it takes; when the platform's
SIGKILL ends the grace period first, the forked child dies (``DirtyExit``) and the job goes to the
FAILED queue, never re-enqueued. ``mode = "term"`` (TERM with ``TERM_CHILD``): the child gets
``term_timeout`` seconds (``RESQUE_TERM_TIMEOUT``, default 4) and is then killed
(``TermException``), also to the failed queue. Resque has no retries of its own;
``on_kill = "requeue"`` models the resque-retry plugin putting killed jobs back.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Fail, Outcome, Requeue, Strategy, choice_param, duration_field, keyed_field


@dataclass(frozen=True)
class Resque(Strategy):
    """Wait for the job (quit) or kill it after 4 s (term); killed jobs go to the failed queue."""

    name = "resque"
    summary = "Resque: waits for the job; the platform's SIGKILL sends it to the failed queue"

    mode: str = "quit"
    term_timeout: float = duration_field(4.0)
    #: the parameter ``on_kill`` (the name of the field is the decision ``on_kill``'s)
    on_kill_action: str = keyed_field("fail", "on_kill")

    def __post_init__(self) -> None:
        super().__post_init__()
        self._set("mode", choice_param("mode", self.mode, ("quit", "term")))
        self._set(
            "on_kill_action",
            choice_param("on_kill", self.on_kill_action, ("fail", "requeue")),
        )

    @property
    def term_wait(self) -> float:
        return float("inf") if self.mode == "quit" else self.term_timeout

    @property
    def on_timeout(self) -> Outcome:
        return self.on_kill

    @property
    def on_kill(self) -> Outcome:
        if self.on_kill_action == "requeue":
            return Requeue(end="back", restart=True)
        return Fail("DirtyExit" if self.mode == "quit" else "TermException")
