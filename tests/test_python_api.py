"""docs/python.md's code block, run as a user would copy it (slow: a search and a student)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_the_python_api_page_runs_as_written(tmp_path: Path) -> None:
    page = (REPO / "docs" / "python.md").read_text(encoding="utf-8")
    [code] = re.findall(r'```python title="python-api.py"\n(.*?)```', page, re.S)
    (tmp_path / "python-api.py").write_text(code)
    env = {**os.environ, "AVATAR_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "python-api.py"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    accuracy, size = done.stdout.splitlines()[-2].split()
    assert 0.0 <= float(accuracy) <= 1.0 and float(size) <= 1.0
    assert done.stdout.splitlines()[-1].startswith("PredictionResult(label=")
