"""The engine's public surface: what ``__all__`` offers, that each name says what it is, that the
names kept for the simulator still import, and that the engine needs only the standard library.
"""

from __future__ import annotations

import inspect
import logging
import pathlib
import re
import subprocess
import sys
import textwrap

import deploysim.strategies.resumable as resumable
from deploysim.strategies.resumable import IterationJob, MemoryStore, Runner, StopSignal
from deploysim.strategies.resumable import enumerators as en

PUBLIC = {
    "CheckpointStore", "IterationJob", "JobRecord", "Lease", "LeaseHeldError", "MemoryStore",
    "PostgresStore", "RedisStore", "ResumableError", "RunResult", "Runner", "SQLiteStore",
    "StaleLeaseError", "StopRequestedError", "StopSignal", "Throttle", "TransactionalStore",
    "enumerators", "local_store", "open_store", "stop_on_signals",
}
KEPT_FOR_THE_SIMULATOR = ("Execution", "VirtualClock", "WallClock", "Clock", "Pause")
REFERENCE = pathlib.Path(__file__).resolve().parent.parent / "docs" / "engine.md"


def test_all_lists_what_a_job_author_needs_and_nothing_else():
    assert set(resumable.__all__) == PUBLIC
    assert len(resumable.__all__) == len(PUBLIC)
    namespace: dict[str, object] = {}
    exec("from deploysim.strategies.resumable import *", namespace)
    assert set(namespace) - {"__builtins__"} == PUBLIC


def test_names_outside_all_still_import_from_the_package():
    from deploysim.strategies.resumable import Execution, VirtualClock  # the simulator's imports
    from deploysim.strategies.resumable.clock import VirtualClock as FromModule
    from deploysim.strategies.resumable.runner import Execution as ExecutionFromModule

    assert Execution is ExecutionFromModule and VirtualClock is FromModule
    for name in KEPT_FOR_THE_SIMULATOR:
        assert name not in resumable.__all__
        assert getattr(resumable, name).__module__.startswith("deploysim.strategies.resumable.")


def test_every_public_name_and_its_public_methods_have_a_docstring():
    missing = []
    for name in resumable.__all__:
        value = getattr(resumable, name)
        if not inspect.getdoc(value):
            missing.append(name)
        if inspect.isclass(value):
            for attr, member in vars(value).items():
                if not attr.startswith("_") and callable(member) and not inspect.getdoc(member):
                    missing.append(f"{name}.{attr}")
    for name in en.__all__:
        if not inspect.getdoc(getattr(en, name)):
            missing.append(f"enumerators.{name}")
    assert not missing, f"no docstring: {missing}"


def test_the_engine_imports_with_the_standard_library_alone():
    """A fresh interpreter imports the engine (and its testing helpers, whose schedules alone
    need hypothesis) without loading any third-party module."""
    script = textwrap.dedent("""
        import sys
        before = set(sys.modules)
        import deploysim.strategies.resumable
        import deploysim.strategies.resumable.testing
        new = {m.split(".")[0] for m in set(sys.modules) - before}
        print(sorted(m for m in new
                     if m not in sys.stdlib_module_names and m != "deploysim"
                     and not m.startswith("_")))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_the_engine_logs_under_its_package_logger(caplog):
    class Three(IterationJob):
        def build_enumerator(self, cursor):
            return en.int_range(0, 3, cursor)

        def each_iteration(self, item):
            pass

    with caplog.at_level(logging.INFO, logger="deploysim.strategies.resumable"):
        assert Runner(MemoryStore(), stop=StopSignal()).run("three", Three()).completed
    names = {r.name for r in caplog.records}
    assert names == {"deploysim.strategies.resumable"}
    assert any("completed job three" in r.getMessage() for r in caplog.records)


def test_the_reference_examples_run_and_import_from_the_package():
    blocks = re.findall(r"```python\n(.*?)```", REFERENCE.read_text(), flags=re.S)
    assert len(blocks) >= 5
    namespace: dict[str, object] = {"__name__": "engine_reference"}
    for block in blocks:  # in order, in one namespace, as a reader would type them
        for line in block.splitlines():
            if line.startswith(("from ", "import ")) and "resumable" in line:
                assert line.startswith("from deploysim.strategies.resumable"), line
        exec(compile(block, str(REFERENCE), "exec"), namespace)
    namespace["test_backfill_survives_deploys"]()  # the hypothesis example, for real
    namespace["test_backfill_survives_kills"]()
