"""Each real system against its model, on the calibration's own scenario (three workers, 30
jobs of 2.5 s, a deploy every 7 s with a 1.5 s grace), summed over two runs with different
seeds, as ``deploysim calibrate --system`` runs it; about 90 s per system.

Every system meets the failed and lost targets (each within 5 percentage points of the jobs
enqueued) and loses no job in these runs. Sidekiq meets every target: completion within 5
points and wasted work within 15 % (or one job's length). Celery (both modes) agrees in most
pairs of seeds and is 7 points off in some (the lockstep of three workers restarting together
moves three jobs at once), so it is held to 10 points and to the waste target; RQ, whose model
has completed 5 to 9 points fewer than the real workers in every pair, to 12 points; Dramatiq,
whose redelivery is random, to the failed and lost targets (docs/real-systems.md,
"Calibration")."""

from __future__ import annotations

import pytest

from deploysim.sim.chaos.real import SYSTEM_DEFAULTS, SYSTEM_NAMES, run_system_calibration

COMPLETION_WITHIN = {"sidekiq": 0.05, "celery": 0.10, "celery-acks-late": 0.10, "rq": 0.12}
"""How far each system's simulated completion rate may be from the real one."""

WASTE_HELD = ("sidekiq", "celery", "celery-acks-late")
"""The systems held to the wasted-work target."""


@pytest.mark.parametrize("name", SYSTEM_NAMES)
def test_the_model_agrees_with_the_real_system(need_system, name):
    need_system(name)
    result = run_system_calibration(SYSTEM_DEFAULTS, [name], replications=2)
    r = result["strategies"][name]
    real, sim = r["real"], r["sim"]
    why = (f"{name}: completion {real['completion_rate']:.3f} real / "
           f"{sim['completion_rate']:.3f} sim, failed {real['failed']}/{sim['failed']}, "
           f"lost {real['lost']}/{sim['lost']}, wasted {real['wasted_work_s']:.1f} / "
           f"{r['sim_wasted_work_with_resume_cost_s']:.1f} s")
    assert r["replications"] == 2 and r["measured"]["sigterms"] > 0, why  # deploys came
    assert r["fates_ok"], why
    assert real["lost"] == 0 and sim["lost"] == 0, why
    if name in COMPLETION_WITHIN:
        assert abs(r["completion_rate_diff"]) <= COMPLETION_WITHIN[name] + 1e-9, why
    if name in WASTE_HELD:
        assert r["wasted_ok"], why
    if name == "sidekiq":
        assert r["agree"], why
