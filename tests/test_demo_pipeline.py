"""``search.py experiment=demo``: the whole pipeline end to end, offline, in a subprocess.

A smaller budget than ``make demo`` (fewer surrogate runs and epochs) keeps it quick;
every stage still runs for real: the scratch teacher is trained, the surrogate distils
and fits, NSGA-II searches, two students are distilled, and the report is measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoModelForSequenceClassification

from avatar.search.cost import MB
from tests.conftest import REPO

OUTPUTS = [
    "pareto.json", "candidates.jsonl", "surrogate.json", "students.json",
    "report.md", "report.csv", "report.png", "pareto.png",
]


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    run_dir = tmp_path / "demo"
    env = {**os.environ, "AVATAR_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [
            sys.executable, "search.py", "experiment=demo", "indicator.samples=4", "indicator.max_steps=40",
            "search.population=8", "search.generations=2", "trainer.max_epochs=3",
            "teacher.trainer.max_epochs=3",
            "report.examples=30",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for name in OUTPUTS:
        assert (run_dir / name).is_file(), name
    students = json.loads((run_dir / "students.json").read_text())
    assert len(students) == 2
    for student in students:
        model = AutoModelForSequenceClassification.from_pretrained(run_dir / student["student_dir"])
        size = sum(p.numel() for p in model.parameters()) * 4 / MB
        assert abs(size - student["objectives"]["size_mb"]) < 1e-9
        assert size <= 1.0
    report = (run_dir / "report.md").read_text()
    assert "| teacher |" in report and report.count("| student |") == 2
    assert report.count("| onnx |") == 2 and report.count("| int8 |") == 2  # exported, re-measured
    assert list((run_dir / "wandb").glob("offline-run-*"))


def _demo(tmp_path: Path, name: str) -> Path:
    """One small demo run with a cache of its own (nothing shared between two calls)."""
    run_dir = tmp_path / name
    env = {**os.environ, "AVATAR_CACHE": str(tmp_path / f"cache-{name}"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [
            sys.executable, "search.py", "experiment=demo", "indicator.samples=4", "indicator.max_steps=40",
            "search.population=8", "search.generations=2", "trainer.max_epochs=2",
            "teacher.trainer.max_epochs=2",
            "report.examples=20",
            "report.export=false", "logger=none", f"hydra.run.dir={run_dir}",
        ],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return run_dir


@pytest.mark.slow
def test_same_seed_same_answer_from_empty_caches(tmp_path: Path) -> None:
    """Two demo runs, each with its own empty cache: the same front and the same students."""
    first, second = _demo(tmp_path, "a"), _demo(tmp_path, "b")

    def read(run: Path, name: str):  # noqa: ANN202
        return json.loads((run / name).read_text())

    def front(run: Path) -> list:
        return [(m["config"], m["objectives"]) for m in read(run, "pareto.json")["front"]]

    def students(run: Path) -> list:
        return [(s["candidate"], s["global_step"], s["metrics"]) for s in read(run, "students.json")]

    assert front(first) == front(second)
    assert students(first) == students(second)
