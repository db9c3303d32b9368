"""The README's Python blocks run as written (the README is the first thing a user copies from)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_opens_with_the_two_commands_ci_relies_on():
    text = README.read_text()
    first = re.search(r"```bash\n(.*?)```", text, flags=re.S).group(1).strip().splitlines()
    assert first == [
        "pip install torch==2.13.0 -e . && interp-report -o report.html",
        'pip install torch==2.13.0 -e ".[test]" && python -m pytest',
    ]
    ci = (README.parent / ".ci" / "run").read_text()
    assert first[1] in ci


@pytest.mark.slow
@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_readme_python_block_runs(i, tmp_path):
    assert BLOCKS, "the README has no Python examples"
    # "Importing checkpoints" reads Zhong et al.'s models where `git clone .../pizza` puts them
    shutil.copytree(README.parent / "tests" / "data" / "zhong_pizza", tmp_path / "pizza" / "code" / "save")
    proc = subprocess.run([sys.executable, "-c", BLOCKS[i]], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"README block {i} failed:\n{BLOCKS[i]}\n{proc.stderr[-3000:]}"
