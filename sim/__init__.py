"""The deploy simulator: scenarios, workloads, deploys, platforms and fleets under simpy.

A scenario (``sim.scenario``) names a fleet, a platform, a deploy rhythm, crashes, a workload
and the shutdown strategies to compare; ``sim.workloads`` and ``sim.deploys`` turn it into
seeded random event times. Every problem in a scenario raises ``sim.errors.SimError``.
"""
