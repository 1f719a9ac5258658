"""The README's Python samples run as written, each in a fresh interpreter in an empty folder,
so a newcomer who pastes one gets what the README says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def samples() -> list[str]:
    return FENCE.findall(README.read_text(encoding="utf-8"))


def test_the_readme_has_python_samples():
    assert len(samples()) >= 2


@pytest.mark.parametrize("index", range(len(samples())))
def test_readme_sample_runs(index, tmp_path):
    code = samples()[index]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, f"README sample {index + 1}:\n{code}\n{done.stderr}"
