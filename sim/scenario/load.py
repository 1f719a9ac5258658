"""The load a scenario offers its fleet: how many workers its jobs keep busy on average.

With Poisson arrivals of ``rate`` jobs per second of mean length E[L] (over the job classes,
by weight), ``rate * E[L]`` workers are busy on average (Little's law). Divided by the fleet's
workers it is the offered load: at or above 1 the queue grows without bound whatever the
deploys do, and the completion rates measure the backlog. Deploys, restarts, crashes and hung
jobs take capacity too, so a load just below 1 can still overflow; a backlog offers no rate,
and neither does a trace (its jobs come as they came, not at a rate).
"""

from __future__ import annotations

from .model import Scenario

__all__ = ["busy_workers", "offered_load"]


def busy_workers(scenario: Scenario) -> float | None:
    """The mean number of workers the arrivals keep busy (``rate * E[L]``), ``inf`` for a
    length law without a finite mean; None for a backlog or a trace."""
    workload = scenario.workload
    if workload.arrivals != "poisson" or workload.rate is None:
        return None
    return workload.rate * workload.mean_length()


def offered_load(scenario: Scenario) -> float | None:
    """The busy workers per worker of the fleet (``rate * E[L] / workers``); None for a
    backlog or a trace, which have no arrival rate."""
    busy = busy_workers(scenario)
    return None if busy is None else busy / scenario.fleet.workers
