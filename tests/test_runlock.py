"""One run per run directory: a second run stops at once with one line naming the holder."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from avatar.core.errors import AvatarError
from avatar.run.runlock import LOCK_NAME, run_lock
from tests.conftest import REPO

HOLD = """
import sys, time
from avatar.run.runlock import run_lock
with run_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_holder_gets_one_line_naming_the_first(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(AvatarError) as caught, run_lock(tmp_path):
            pass
        message = str(caught.value)
        assert f"run directory {tmp_path} is in use by pid {holder.pid} on host " in message
        assert "-c" in message  # the holder's command line
        assert message.endswith("wait for it to finish or use another hydra.run.dir")
        assert "\n" not in message
    finally:
        holder.kill()
        holder.wait()
    with run_lock(tmp_path) as path:  # the kernel dropped the dead holder's lock
        assert json.loads(path.read_text())["pid"] != holder.pid
    assert (tmp_path / LOCK_NAME).read_text() == ""  # released: no stale holder record


def test_two_searches_in_one_run_dir(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    command = [
        sys.executable, "search.py", "indicator=flops", "distill.top_k=0", "logger=none",
        "search.population=8", "search.generations=2", "count_feasible=false", f"hydra.run.dir={run_dir}",
    ]
    runs = [subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    deadline = time.monotonic() + 300
    outcomes = [run.communicate(timeout=max(1.0, deadline - time.monotonic())) for run in runs]
    codes = sorted(run.returncode for run in runs)
    assert codes == [0, 2], [err[-2000:] for _, err in outcomes]
    loser = next(err for run, (_, err) in zip(runs, outcomes) if run.returncode == 2)
    assert loser.strip().startswith(f"error: run directory {run_dir} is in use by pid ")
    assert len(loser.strip().splitlines()) == 1
    keys = [json.loads(line)["key"] for line in (run_dir / "candidates.jsonl").read_text().splitlines()]
    assert len(keys) == len(set(keys)) == json.loads((run_dir / "pareto.json").read_text())["evaluations"]
