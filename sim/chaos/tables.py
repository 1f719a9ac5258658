"""Small tables a person reads in a few seconds: one chaos run's audit, and a calibration's
real and simulated numbers side by side."""

from __future__ import annotations

import math
from typing import Any

from ..durations import format_duration
from ..text import text_table


def _seconds(value: float | None) -> str:
    """A chaos figure in seconds or milliseconds ("2.35 s", "1.0 ms"). Chaos runs are
    compressed: item times, pick-ups and wasted work are mostly below a second, where
    ``durations.humanize`` would write "0.00102s"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value >= 1:
        return f"{value:.2f} s"
    return f"{1000 * value:.1f} ms"


def format_chaos(audit: dict[str, Any]) -> str:
    """The audit of one chaos run as a few lines and a two-column table."""
    c = audit["config"]
    rate = audit["completion_rate"]
    head = (
        f"{audit['strategy']}: {c['workers']} workers, {c['jobs']} jobs x {c['items']} items x "
        f"{format_duration(c['item_time_s'])} (measured {_seconds(audit['item_time_s'])}), "
        f"grace {format_duration(c['grace_s'])}, seed {c['seed']}"
    )
    why = "the work was done" if audit["ended_by"] == "done" else "the duration was up"
    ran = (
        f"ran {audit['duration_s']:.2f} s, until {why}: {audit['deploys']} deploys, "
        f"{audit['sigterms']} SIGTERM, {audit['sigkills']} SIGKILL "
        f"({audit['hard_kills']} at deploys, {audit['crashes']} crashes), "
        f"{audit['processes']} worker processes"
    )
    rows = [
        ("enqueued", f"{audit['enqueued']}"),
        ("completed", f"{audit['completed']}  ({100 * rate:.1f}%)" if not math.isnan(rate)
         else "0"),
        ("failed", f"{audit['failed']}"),
        ("lost", f"{audit['lost']}"),
        ("pending", f"{audit['pending']}"),
        ("executions", f"{audit['executions']}"),
        ("duplicate item executions", f"{audit['duplicate_item_executions']}"),
        ("duplicate effects", f"{audit['duplicate_effects']}"),
        ("wasted work", _seconds(audit["wasted_work_s"])),
        ("longest pick-up after a kill", _seconds(audit["max_pickup_s"])),
        ("integrity_check", "ok" if audit["integrity_ok"] else "FAILED"),
    ]
    width = max(len(k) for k, _ in rows)
    table = "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)
    return "\n".join((head, ran, "", table))


def format_calibration(result: dict[str, Any]) -> str:
    """A calibration: per strategy, the real and simulated numbers side by side."""
    c = result["config"]
    crashes = (f"a crash every {format_duration(c['crash_every_s'])}" if c["crash_every_s"]
               else "no crashes")
    title = (
        f"calibration: {c['workers']} workers, {c['jobs']} jobs x {c['items']} items x "
        f"{format_duration(c['item_time_s'])}, deploy every {format_duration(c['deploy_every_s'])}"
        f" (grace {format_duration(c['grace_s'])}), {crashes}, seed {c['seed']}, "
        f"{c.get('replications', 1)} replication(s); real / simulated"
    )
    head = ("strategy", "completion", "diff", "wasted work", "diff", "dup items", "lost",
            "failed", "SIGKILLs", "agree")
    rows: list[tuple[str, ...]] = []
    for name, r in result["strategies"].items():
        real, sim = r["real"], r["sim"]
        rows.append((
            name,
            f"{100 * real['completion_rate']:.1f}% / {100 * sim['completion_rate']:.1f}%",
            f"{100 * r['completion_rate_diff']:+.1f} pp",
            f"{real['wasted_work_s']:.2f} / {r['sim_wasted_work_with_resume_cost_s']:.2f} s",
            f"{100 * r['wasted_work_rel']:.0f}%",
            f"{real['duplicate_item_executions']} / {sim['duplicate_item_executions']}",
            f"{real['lost']} / {sim['lost']}",
            f"{real['failed']} / {sim['failed']}",
            f"{r['measured']['sigkills']}",
            "yes" if r["agree"] else "NO",
        ))
    t = result["targets"]
    foot = (f"targets: completion within {t['completion_rate_pp']:g} pp, failed and lost each "
            f"within {t['failed_lost_pp']:g} pp of the jobs enqueued, wasted work within "
            f"{100 * t['wasted_work_rel']:g}%; the simulated waste of the resumable engine "
            f"includes the measured cost of each resumed attempt, which the simulator does not "
            f"model")
    notes = [f"{name}: the model draws at random; over {r['sim_draws']} simulations of each run "
             f"its completion ranged {100 * r['sim_completion_range'][0]:.0f}-"
             f"{100 * r['sim_completion_range'][1]:.0f}% (5th-95th percentile), "
             f"the real run's {100 * r['real']['completion_rate']:.0f}%"
             for name, r in result["strategies"].items() if "sim_completion_range" in r]
    return "\n".join((title, "", text_table(head, rows), "", *notes, *([""] if notes else []),
                      foot))
