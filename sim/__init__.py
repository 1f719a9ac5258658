"""The deploy simulator: scenarios, fleets under simpy, analysis, the report and real chaos runs.

A scenario (``deploysim.sim.scenario``) names a fleet, a platform, a deploy rhythm, crashes, a
workload and the shutdown strategies to compare; ``deploysim.sim.fleet`` draws its jobs, deploys
and crashes from its seed and runs each strategy over them; ``deploysim.sim.analysis`` holds the
closed forms, fitting and sweeps; ``deploysim.sim.report`` writes the report. Every problem in
the input raises ``deploysim.sim.errors.SimError``. The layout is in docs/architecture.md.
"""
