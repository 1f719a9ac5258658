"""Write the example data of your_workload.ipynb, once, from a fixed seed.

    python notebooks/data/make_examples.py

job_durations.csv: 500 runs of four kinds of job, as a job system's dashboard exports them
(durations in seconds to the millisecond, so the fastest webhooks show as 0.000; exports are
killed by a one-hour timeout and then show 3600 with status "timeout"):

    webhook  55%  lognormal, median 25 ms, sigma 1.5
    mailer   25%  lognormal, median 4 s,   sigma 0.8
    report   15%  lognormal, median 3 min, sigma 1.0
    export    5%  lognormal, median 25 min, sigma 0.9, killed at 1 h

deploys.csv: two working weeks from Monday 3 March 2025 of deploys in working hours
(9:00-17:00, about 1.5 an hour, Poisson) and a few hotfixes outside them.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 20250303
CLASSES = [  # name, share, median (s), sigma
    ("webhook", 0.55, 0.025, 1.5),
    ("mailer", 0.25, 4.0, 0.8),
    ("report", 0.15, 180.0, 1.0),
    ("export", 0.05, 1500.0, 0.9),
]
TIMEOUT = 3600.0
ROWS = 500


def job_durations(rng: np.random.Generator) -> list[tuple[str, str, str]]:
    shares = np.array([c[1] for c in CLASSES])
    kinds = rng.choice(len(CLASSES), size=ROWS, p=shares / shares.sum())
    rows = []
    for k in kinds:
        name, _, median, sigma = CLASSES[k]
        seconds = float(rng.lognormal(math.log(median), sigma))
        status = "ok"
        if seconds >= TIMEOUT:
            seconds, status = TIMEOUT, "timeout"
        seconds = math.floor(seconds * 1000) / 1000  # the dashboard shows whole milliseconds
        rows.append((name, f"{seconds:.3f}", status))
    return rows


def deploy_times(rng: np.random.Generator) -> list[dt.datetime]:
    start = dt.datetime(2025, 3, 3)  # a Monday
    times = []
    for day in range(14):
        date = start + dt.timedelta(days=day)
        if date.weekday() < 5:
            hours = np.sort(rng.uniform(9.0, 17.0, rng.poisson(1.5 * 8)))
            times += [date + dt.timedelta(hours=float(h)) for h in hours]
            if rng.random() < 0.3:  # a hotfix in the evening
                times.append(date + dt.timedelta(hours=float(rng.uniform(18.0, 23.0))))
    return sorted(t.replace(microsecond=0) for t in times)


def main() -> None:
    rng = np.random.default_rng(SEED)
    with (HERE / "job_durations.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["job_class", "duration", "status"])
        writer.writerows(job_durations(rng))
    with (HERE / "deploys.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["deployed_at"])
        writer.writerows([[t.isoformat(sep=" ")] for t in deploy_times(rng)])


if __name__ == "__main__":
    main()
