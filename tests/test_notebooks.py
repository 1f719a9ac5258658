"""The notebooks run top to bottom in their quick mode, in a kernel of the interpreter running
the tests, without an error, and show what they promise: figures, tables, findings computed in
code, and a summary of the numbers. The copies saved in the repository carry the outputs of a
full-size run, at a size a browser shows quickly."""

import json
import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
KERNEL = "deploysim-tests"
CELL_TIMEOUT = 120  # seconds; a quick run of a whole notebook takes a few
MAX_BYTES = 1_500_000

# notebook -> (figures it draws at least, keys of the JSON summary its last cell prints)
EXPECTED = {
    "compare_strategies.ipynb": (2, {"best", "completed_pct", "wasted_pct"}),
    "tune_checkpoints.ipynb": (2, {"optima", "max_runtime", "max_runtime_meeting_target"}),
    "your_workload.ipynb": (6, {"model", "class_best", "deploys", "recommended"}),
}
STRATEGIES = {"sidekiq", "resque", "celery", "split", "resumable"}


def test_every_notebook_is_covered():
    assert {p.name for p in NOTEBOOKS.glob("*.ipynb")} == set(EXPECTED)


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory):
    """A kernelspec that starts THIS interpreter, so the notebooks run in the environment under
    test rather than in whichever "python3" kernel Jupyter finds first."""
    root = tmp_path_factory.mktemp("kernels")
    spec = root / KERNEL
    spec.mkdir()
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "deploysim tests",
        "language": "python",
    }))
    return root


def execute(path, kernel_dir):
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    nb = nbformat.read(path, as_version=4)
    manager = KernelManager(
        kernel_name=KERNEL, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_dir)])
    )
    client = nbclient.NotebookClient(
        nb, km=manager, timeout=CELL_TIMEOUT, resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()
    return nb


@pytest.fixture(scope="module", params=sorted(EXPECTED))
def executed(request, kernel_dir):
    """A notebook executed in quick mode (the saved file is left untouched)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEPLOYSIM_NOTEBOOK_QUICK", "1")
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
        mp.setenv("PYTHONPATH", path)  # the project, even when it is not installed
        return request.param, execute(NOTEBOOKS / request.param, kernel_dir)


def outputs(nb, tag=None):
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if tag is None or tag in cell.metadata.get("tags", []):
            yield from cell.get("outputs", [])


def summary_of(nb):
    texts = [o["text"] for o in outputs(nb, "summary") if o.get("output_type") == "stream"]
    assert texts, "the summary cell printed nothing"
    return json.loads("".join(texts))


def check_shows_results(name, nb):
    figures, keys = EXPECTED[name]
    errors = [o for o in outputs(nb) if o.get("output_type") == "error"]
    assert not errors, errors[0].get("evalue")
    images = [o for o in outputs(nb) if "image/png" in o.get("data", {})]
    assert len(images) >= figures
    tables = [o for o in outputs(nb) if "<table" in str(o.get("data", {}).get("text/html", ""))]
    assert tables, "no table was shown"
    findings = [o["data"]["text/markdown"] for o in outputs(nb, "findings")
                if "text/markdown" in o.get("data", {})]
    assert findings and all(text.strip() for text in findings)
    summary = summary_of(nb)
    assert keys <= set(summary)
    return summary


@pytest.mark.slow
def test_notebook_runs_in_quick_mode_and_shows_its_results(executed):
    name, nb = executed
    summary = check_shows_results(name, nb)
    assert summary["quick"] is True  # the first cell saw the test's environment variable
    if name == "compare_strategies.ipynb":
        assert set(summary["best"]) == {"heroku-hourly", "dora-elite", "shopify-40-a-day"}
        assert set(summary["best"].values()) <= STRATEGIES
        assert all(0 <= v <= 100 for v in summary["completed_pct"].values())
    elif name == "tune_checkpoints.ipynb":
        for optimum in summary["optima"].values():
            assert 0 < optimum["daly_tau"] < optimum["young_tau"]
            assert optimum["best_pct"] > 0
        assert next(iter(summary["max_runtime"])) == "off"
    else:
        assert summary["recommended"] in STRATEGIES | {"resumable-daly"}
        assert set(summary["class_best"]) == {"webhook", "mailer", "report", "export"}
        assert summary["deploys"]["schedule"] == "business-hours"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_saved_notebook_carries_a_full_run(name):
    path = NOTEBOOKS / name
    assert path.stat().st_size < MAX_BYTES
    nb = nbformat.read(path, as_version=4)
    summary = check_shows_results(name, nb)
    assert summary["quick"] is False  # saved from a full-size run, not the tests' quick one


def test_example_data_is_where_the_workload_notebook_looks():
    from deploysim.sim.analysis.fit import deploys_table, fit_lengths

    durations = (NOTEBOOKS / "data" / "job_durations.csv").read_text().splitlines()
    assert durations[0] == "job_class,duration,status" and 200 <= len(durations) - 1 <= 1000
    rows = [line.split(",") for line in durations[1:]]
    fits = fit_lengths([float(r[1]) for r in rows], [r[2] == "timeout" for r in rows])
    assert fits[0].n == len(rows) and fits[0].n_zero > 0 and fits[0].n_censored > 0
    deploys = (NOTEBOOKS / "data" / "deploys.csv").read_text().splitlines()
    assert deploys_table(deploys[1:])["schedule"] == "business-hours"
