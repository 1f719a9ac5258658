"""Shutdown strategies of real job systems, and the reference resumable job engine.

Each module models one system's behaviour on deploy (see the row of SEMANTICS it cites);
``strategies.resumable`` is a real engine that runs in production workers and, unchanged,
under the simulator's virtual clock.
"""
