"""The simpy model of a fleet of workers and what it counts.

- ``work``: the values the fleet holds (units of work, worker slots, deploy records) and a
  replication's random draws;
- ``ledger``: per-job records of one run, counted where things happen;
- ``adapter``: the resumable engine inside the fleet (its store, its job, its runner);
- ``simulation``: ``FleetSim``, one strategy over one replication's draws;
- ``results``: a run's ledger summarized, and replications combined;
- ``replications``: a scenario's draws and its runs, strategy by strategy.
"""
