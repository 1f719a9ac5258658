"""One real-systems run's audit, as a few lines a person reads."""

from __future__ import annotations

from typing import Any

from ...durations import format_duration


def format_system(audit: dict[str, Any]) -> str:
    """The audit of one run on a real system: what ran, then every job's bucket."""
    c = audit["config"]
    head = (f"{audit['system']} {audit['version']}: {c['workers']} workers, {c['jobs']} jobs x "
            f"{c['items']} items x {format_duration(c['item_time_s'])}, deploy every "
            f"{format_duration(c['deploy_every_s'])} (grace {format_duration(c['grace_s'])}), "
            f"seed {c['seed']}")
    why = "the work was done" if audit["ended_by"] == "done" else "the duration was up"
    deploys = audit["deploys"]
    ran = (f"ran {audit['duration_s']:.1f} s, until {why}: {deploys} "
           f"deploy{'' if deploys == 1 else 's'}, "
           f"{audit['sigterms']} SIGTERM, {audit['sigkills']} SIGKILL "
           f"({audit['deploy_sigkills']} at deploys, {audit['crashes']} crashes); a worker "
           f"took {audit['restart_delay_s']:.2f} s from a death to its replacement's ready")
    settings = ", ".join(f"{k}={v}" for k, v in sorted(audit["settings"].items()))
    rows = [
        ("enqueued", f"{audit['enqueued']}"),
        ("completed", f"{audit['completed']}  ({100 * audit['completion_rate']:.1f}%)"),
        ("failed", f"{audit['failed']}"),
        ("lost", f"{audit['lost']}"),
        ("pending", f"{audit['pending']}"),
        ("attempts", f"{audit['executions']}"),
        ("duplicate item executions", f"{audit['duplicate_item_executions']}"),
        ("duplicate effects", f"{audit['duplicate_effects']}"),
        ("items never processed", f"{audit['missing_effects']}  (of completed jobs)"),
        ("wasted work", f"{audit['wasted_work_s']:.2f} s"),
    ]
    width = max(len(k) for k, _ in rows)
    table = "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)
    return "\n".join((head, ran, f"settings: {settings}", "", table))
