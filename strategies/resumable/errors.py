"""The one error type of the resumable engine."""

from __future__ import annotations


class ResumableError(Exception):
    """Raised for every problem the engine detects: bad cursors, bad store rows, stale leases,
    missing or changed input files. The message names the job and the value at fault."""


class StaleLeaseError(ResumableError):
    """A runner tried to write under a lease generation that another runner has replaced."""
