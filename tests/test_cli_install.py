"""The command line on an install without the ``sim`` extra: ``--help`` works, and a command
that needs the simulator's packages says in one line what to install, with exit status 2.

Each case runs in a fresh interpreter whose imports of the extra's packages are refused, as
they would fail where the packages are not installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deploysim.sim.cli import SIM_PACKAGES

ADVICE = "install them with: pip install 'deploysim[sim]'"

REFUSING = """
import sys

REFUSED = set(sys.argv[1].split(","))


class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in REFUSED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Refuse())
from deploysim.sim.cli import main

raise SystemExit(main(sys.argv[2:]))
"""


def bare(*args: str, refused: tuple[str, ...] = SIM_PACKAGES) -> subprocess.CompletedProcess[str]:
    """``deploysim ARGS`` where none of ``refused`` can be imported."""
    return subprocess.run([sys.executable, "-c", REFUSING, ",".join(refused), *args],
                          capture_output=True, text=True, timeout=120)


def test_help_needs_only_the_standard_library() -> None:
    done = bare("--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: deploysim")
    for command in ("run", "report", "sweep", "chaos", "calibrate", "bench", "demo"):
        assert command in done.stdout
    assert bare("chaos", "--help").returncode == 0


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (["run", "dora-elite"], "deploysim run"),
        (["run", "dora-elite", "--json"], "deploysim run"),
        (["sweep", "dora-elite", "--grid", "deploys.every=1h"], "deploysim sweep"),
        (["chaos"], "deploysim chaos"),
        (["calibrate"], "deploysim calibrate"),
        (["bench", "sim"], "deploysim bench sim"),
    ],
)
def test_a_command_names_what_to_install(args: list[str], command: str) -> None:
    done = bare(*args)
    assert done.returncode == 2, done
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"deploysim: error: `{command}` needs the simulator's packages "
                               "(missing: ")
    assert lines[0].endswith(ADVICE)
    assert done.stdout == ""


def test_report_names_what_to_install(tmp_path: Path) -> None:
    out = tmp_path / "report"
    done = bare("report", "--quick", "--out", str(out))
    assert done.returncode == 2, done
    assert done.stderr.splitlines() == [
        "deploysim: error: `deploysim report` needs the simulator's packages (missing: "
        f"{', '.join(SIM_PACKAGES)}); {ADVICE}"
    ]
    assert not out.exists()


def test_only_the_missing_packages_are_named() -> None:
    done = bare("run", "dora-elite", refused=("simpy",))
    assert done.returncode == 2, done
    assert done.stderr == (
        "deploysim: error: `deploysim run` needs the simulator's packages (missing: simpy); "
        f"{ADVICE}\n"
    )


def test_the_engine_benchmark_needs_only_the_standard_library() -> None:
    done = bare("bench", "engine", "--quick", "--json")
    assert done.returncode == 0, done.stderr
    assert "item_overhead_us" in json.loads(done.stdout)


def test_a_table_needs_tabulate() -> None:
    done = bare("bench", "engine", refused=("tabulate",))
    assert done.returncode == 2, done
    assert "(missing: tabulate)" in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_bad_input_is_still_named_first() -> None:
    done = bare("run", "dora-elite", "--frobnicate")
    assert done.returncode == 2
    assert "unrecognized arguments: --frobnicate" in done.stderr
    assert "pip install" not in done.stderr
