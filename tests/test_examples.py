"""The adapters' runnable examples (docs/examples/) import as their workers import them: the job
class and the task or actor are declared, and nothing runs or connects at import."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from deploysim.strategies.resumable import IterationJob

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "docs" / "examples").glob("*.py"))


def test_every_adapter_has_an_example():
    assert [p.stem for p in EXAMPLES] == ["celery_backfill", "dramatiq_backfill", "rq_backfill"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_an_example_declares_its_job_and_task(path, need_system):
    need_system(path.stem.split("_")[0])
    names = runpy.run_path(str(path), run_name=path.stem)
    jobs = [getattr(v, "job_class", v) for v in names.values()]  # a Dramatiq actor's class
    jobs = [v for v in jobs
            if isinstance(v, type) and issubclass(v, IterationJob) and v is not IterationJob]
    assert jobs, f"{path.name} declares no IterationJob"
    doc = names["__doc__"] or ""
    assert "SIGTERM" in doc or "kill -TERM" in doc, "the example says how to stop its worker"
