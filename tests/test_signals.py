"""``kill -TERM`` in every phase of a real ``search.py``, then the same command: the run it continues.

One chain (slow: seven cold starts and a whole small demo): SIGTERM during the teacher's
fine-tuning, the surrogate's brief runs, the NSGA-II search, a student's distillation, the
ONNX export and the report, each followed by the same command; each stop exits 143 with
the resume hint and leaves no temporary file, and the run that finally ends has the same
front and the same students (step counts and metrics) as an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from avatar.cli.errors import RESUME
from tests.conftest import REPO

OPTIONS = [
    "experiment=demo", "indicator.samples=4", "indicator.max_steps=40", "search.population=8",
    "search.generations=40", "trainer.max_epochs=3", "teacher.trainer.max_epochs=3", "report.examples=30",
    "logger=none",
]


def _command(run: Path) -> list[str]:
    return [sys.executable, "search.py", *OPTIONS, f"hydra.run.dir={run}"]


def _env(cache: Path) -> dict[str, str]:
    return {**os.environ, "AVATAR_CACHE": str(cache), "OMP_NUM_THREADS": "1"}


def _log_says(text: str) -> Callable[[Path, Path, str], bool]:
    return lambda run, cache, log: text in log


def _exists(pattern: str, under: str = "run") -> Callable[[Path, Path, str], bool]:
    return lambda run, cache, log: any((run if under == "run" else cache).glob(pattern))


PHASES: list[tuple[str, Callable[[Path, Path, str], bool]]] = [
    ("teacher", _log_says("fine-tuning teacher")),
    ("surrogate", _log_says("surrogate: the first brief run took")),
    ("search", _exists("search_checkpoint*")),
    ("students", _exists("students/*/checkpoints/best.ckpt")),
    ("export", _exists("students/*/student/*.onnx")),
    ("report", _log_says("TF-IDF + LR fitted")),  # mid-report: the baseline row, then latencies
]


Seen = Callable[[Path, Path, str], bool]


def _terminate_when(phase: Seen, run: Path, cache: Path, log: Path) -> int | None:
    """Run the command; SIGTERM once ``phase`` is seen. Its exit code (None: it ended before)."""
    with open(log, "w") as out:
        process = subprocess.Popen(_command(run), cwd=REPO, env=_env(cache), stdout=out,
                                   stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600
    while process.poll() is None and time.monotonic() < deadline:
        if phase(run, cache, log.read_text(errors="replace")):
            process.send_signal(signal.SIGTERM)
            return process.wait(timeout=300)
        time.sleep(0.1)
    process.wait(timeout=300)
    return None


def _front(run: Path) -> list:
    return [(m["config"], m["objectives"]) for m in json.loads((run / "pareto.json").read_text())["front"]]


def _students(run: Path) -> list:
    students = json.loads((run / "students.json").read_text())
    return [(s["candidate"], s["global_step"], s["metrics"]) for s in students]


@pytest.mark.slow
def test_sigterm_in_every_phase_then_the_same_command_is_the_uninterrupted_run(tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    done = subprocess.run(_command(whole), cwd=REPO, env=_env(tmp_path / "cache-whole"), capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]

    run, cache = tmp_path / "cut", tmp_path / "cache-cut"
    for name, phase in PHASES:
        log = tmp_path / f"{name}.log"
        code = _terminate_when(phase, run, cache, log)
        assert code == 143, f"{name}: exit {code}\n{log.read_text()[-3000:]}"
        assert log.read_text().strip().splitlines()[-1] == f"terminated (SIGTERM): {RESUME}", name
        assert not [p for p in (*run.rglob("*.tmp*"), *cache.rglob("*.tmp*"))], name  # no temporary file
    done = subprocess.run(_command(run), cwd=REPO, env=_env(cache), capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _front(run) == _front(whole)
    assert _students(run) == _students(whole)
    assert (run / "report.md").is_file()
