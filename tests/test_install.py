"""The built wheel, installed into a fresh virtual environment the way a production app would
install the engine: it adds only `deploysim` to site-packages, the engine runs with no
third-party package at all, and the simulator's commands say what to install."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

ENGINE_SCRIPT = textwrap.dedent("""
    import sys
    already = set(sys.modules)  # the interpreter's own start-up (site hooks) is not ours
    from deploysim.strategies.resumable import IterationJob, Runner, SQLiteStore, enumerators

    seen = []

    class Count(IterationJob):
        def build_enumerator(self, cursor):
            return enumerators.int_range(0, 50, cursor=cursor)

        def each_iteration(self, item):
            seen.append(item)

    result = Runner(SQLiteStore(sys.argv[1])).run("count", Count())
    assert result.completed and seen == list(range(50)), (result, seen)
    third_party = sorted({m.split(".")[0] for m in set(sys.modules) - already}
                         - set(sys.stdlib_module_names) - {"deploysim"})
    print("third-party:", third_party)
""")


def _site_packages(python: Path) -> Path:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    out = subprocess.run([str(python), "-c", code],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


@pytest.fixture(scope="module")
def fresh_install(tmp_path_factory):
    """A venv with nothing but pip, and the project's wheel installed into it without deps."""
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "source"  # a copy, so the build leaves nothing in the working tree
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", ".hypothesis", "__pycache__", "reports",
        "notebooks"))
    wheels = tmp / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels),
                    str(source)], check=True, capture_output=True, text=True)
    (wheel,) = wheels.glob("deploysim-*.whl")
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    site = _site_packages(python)
    before = {p.name for p in site.iterdir()}
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True, text=True)
    after = {p.name for p in site.iterdir()}
    return python, before, after, tmp


def test_the_wheel_adds_only_deploysim(fresh_install):
    _, before, after, _ = fresh_install
    added = after - before
    assert "deploysim" in added
    assert {name for name in added if not name.startswith("deploysim")} == set(), added
    assert {name for name in added if name.endswith(".dist-info")} == {
        next(n for n in added if n.endswith(".dist-info"))
    }
    assert len(added) == 2, added  # deploysim/ and deploysim-<version>.dist-info


def test_the_wheel_ships_its_data(fresh_install):
    python, _, _, _ = fresh_install
    package = _site_packages(python) / "deploysim"
    bundled = {p.name for p in (package / "sim" / "scenario" / "bundled").glob("*.toml")}
    assert {"heroku-hourly.toml", "dora-elite.toml"} <= bundled
    assert (package / "sim" / "report" / "readme_template.md").is_file()


def test_the_engine_runs_with_no_third_party_package(fresh_install, tmp_path):
    python, _, _, _ = fresh_install
    script = tmp_path / "job.py"
    script.write_text(ENGINE_SCRIPT)
    done = subprocess.run([str(python), "-I", str(script), str(tmp_path / "progress.db")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "third-party: []" in done.stdout


def test_the_old_top_level_names_are_not_installed(fresh_install, tmp_path):
    python, _, _, _ = fresh_install
    for name in ("sim", "strategies"):
        done = subprocess.run([str(python), "-I", "-c", f"import {name}"], capture_output=True,
                              text=True, cwd=tmp_path)
        assert done.returncode != 0 and "ModuleNotFoundError" in done.stderr, name


def test_simulator_commands_say_what_to_install(fresh_install, tmp_path):
    python, _, _, _ = fresh_install
    deploysim = python.parent / "deploysim"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    helped = subprocess.run([str(deploysim), "--help"], capture_output=True, text=True, env=env,
                            cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    for command in (["report", "--quick", "--out", str(tmp_path / "r")], ["run", "dora-elite"]):
        done = subprocess.run([str(deploysim), *command], capture_output=True, text=True, env=env,
                              cwd=tmp_path)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert "pip install 'deploysim[sim]'" in lines[0]
    assert not (tmp_path / "r").exists()
