"""A run directory moved or copied elsewhere resumes and finishes as itself (issue 20).

Its files record paths relative to it (``avatar.core.io.portable_path``) and read them back
against where it is now (``recorded_path``); Lightning's checkpoint state is re-rooted on
resume (``avatar.learn.training.CheckpointsWhereTheyAre``). Real tiny students, a few seconds each.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from avatar.core.errors import DataError
from avatar.core.io import portable_path, recorded_path
from avatar.distill.front import distill_front
from avatar.distill.settings import DistillResult, DistillSettings, finished_result
from avatar.distill.train import distill_candidate
from avatar.learn.training import rerooted_state
from avatar.plugins.tasks.demo import DemoTask
from avatar.report.compare import best_student, read_run
from avatar.report.stage import ReportOptions, report_run
from avatar.search.space import Candidate
from tests.helpers import load_space
from tests.test_distill import TINY, gold_knowledge

torch.set_num_threads(1)

TASK = DemoTask(limit=32)
KNOWLEDGE = gold_knowledge(TASK, soft=True)
SETTINGS = DistillSettings(progress_bar=False, flips=None, measure_energy=False)


@pytest.fixture(scope="module")
def candidate() -> Candidate:
    return load_space("tiny").validate(TINY)


@pytest.fixture
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "moved_cache"  # shared: the tokenizer trains once


def distil(candidate: Candidate, out: Path, cache: Path, steps: int) -> DistillResult:
    return distill_candidate(candidate, TASK, KNOWLEDGE, SETTINGS, out, cache_dir=cache,
                             trainer={"max_steps": steps, "accelerator": "cpu"})


def checkpoint_paths(out: Path) -> list[str]:
    """Every path the Lightning state of ``out``'s ``last.ckpt`` records."""
    states = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["callbacks"]
    found = []
    for state in states.values():
        found += [state.get(k) for k in ("dirpath", "best_model_path", "last_model_path") if state.get(k)]
        found += list(state.get("best_k_models") or {})
    return found


def assert_resumed_as_itself(out: Path, result: DistillResult, steps: int = 4) -> None:
    """Resumed from its own last.ckpt, no versioned copy beside it, every recorded path its own."""
    assert result.resumed_from == out / "checkpoints" / "last.ckpt" and result.global_step == steps
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert all(Path(p).is_relative_to(out.resolve()) for p in checkpoint_paths(out))
    recorded = json.loads((out / "result.json").read_text())
    assert recorded["student_dir"] == "student" and recorded["resumed_from"] == "checkpoints/last.ckpt"


# ------------------------------------------------------------------------------ the helpers


def test_paths_are_written_relative_and_read_where_the_run_is_now(tmp_path: Path) -> None:
    run = tmp_path / "run"
    student = run / "students" / "k" / "student"
    student.mkdir(parents=True)
    cache = tmp_path / "cache"
    cache.mkdir()
    assert portable_path(student, run) == "students/k/student"
    assert portable_path(run, run) == "."
    assert portable_path(cache, run) == str(cache)  # outside the run: absolute, it does not move
    assert recorded_path("students/k/student", run) == student
    assert recorded_path(str(student), run) == student  # an old absolute path inside the run
    # an old file of a run written at /gone/run, now here: re-rooted onto what this run holds
    assert recorded_path(tmp_path / "gone" / "run" / "students" / "k" / "student", run) == student
    assert recorded_path(tmp_path / "gone" / "students" / "k" / "student", run / "students" / "k") == student
    assert recorded_path(cache, run) == cache
    gone = tmp_path / "gone" / "teacher"
    assert recorded_path(gone, run, must_exist=False) == gone
    with pytest.raises(DataError, match=r"^teacher.json: .*gone/teacher no longer exists and is not in"):
        recorded_path(gone, run, source="teacher.json")


def test_a_checkpoint_state_is_rerooted_onto_its_folder_now() -> None:
    state = {"dirpath": "/old/run/checkpoints", "best_model_path": "/old/run/checkpoints/best.ckpt",
             "last_model_path": "/old/run/checkpoints/last.ckpt", "kth_best_model_path": "",
             "best_k_models": {"/old/run/checkpoints/best.ckpt": 0.5}, "best_model_score": 0.5}
    moved = rerooted_state(state, "/new/copy/checkpoints")
    assert moved["dirpath"] == "/new/copy/checkpoints" and moved["best_model_score"] == 0.5
    assert moved["best_model_path"] == "/new/copy/checkpoints/best.ckpt"
    assert moved["last_model_path"] == "/new/copy/checkpoints/last.ckpt"
    assert moved["best_k_models"] == {"/new/copy/checkpoints/best.ckpt": 0.5}
    assert rerooted_state(state, "/old/run/checkpoints") is state


# ------------------------------------------------------------------------------ real students


def test_a_moved_student_resumes_and_finishes_in_its_new_place(candidate: Candidate, cache: Path,
                                                                tmp_path: Path) -> None:
    first = tmp_path / "run" / "student"
    assert distil(candidate, first, cache, 2).global_step == 2
    moved = Path(shutil.move(first, tmp_path / "elsewhere" / "student"))
    result = distil(candidate, moved, cache, 4)
    assert_resumed_as_itself(moved, result)
    assert result.student_dir == moved / "student" and not first.exists()
    # finished, moved again: returned as it is, from its new place
    again = Path(shutil.move(moved, tmp_path / "third" / "student"))
    done = distil(candidate, again, cache, 4)
    assert done.student_dir == again / "student" and done.resumed_from == again / "checkpoints" / "last.ckpt"


def test_a_copied_student_finishes_without_the_original(candidate: Candidate, cache: Path,
                                                        tmp_path: Path) -> None:
    """The original is deleted after copying: reading or writing any of its files would fail or
    recreate it. Before the fix the copy reloaded the original's best.ckpt and wrote last-v1.ckpt."""
    original = tmp_path / "run" / "student"
    distil(candidate, original, cache, 2)
    copy = tmp_path / "copy" / "student"
    shutil.copytree(original, copy)
    shutil.rmtree(tmp_path / "run")
    result = distil(candidate, copy, cache, 4)
    assert_resumed_as_itself(copy, result)
    assert not (tmp_path / "run").exists()


def test_an_old_result_with_absolute_paths_is_read_where_it_is_now(candidate: Candidate, cache: Path,
                                                                   tmp_path: Path) -> None:
    """``result.json`` written before paths were relative (absolute) still finishes in a moved run."""
    first = tmp_path / "run" / "student"
    result = distil(candidate, first, cache, 2)
    (first / "result.json").write_text(json.dumps(result.to_dict()))  # the old format: absolute
    moved = Path(shutil.move(first, tmp_path / "moved" / "student"))
    done = finished_result(moved, result.signature)
    assert done is not None and done.student_dir == moved / "student"
    assert done.resumed_from is None and done.global_step == 2


def test_a_moved_search_run_finishes_its_students_and_report(candidate: Candidate, cache: Path,
                                                             tmp_path: Path) -> None:
    """The issue's failure: a finished student in a moved run was reported from its old path
    (``model folder not found``). ``students.json`` and ``report.csv`` name the run's own folders."""
    front = [{"config": candidate.as_dict(), "objectives": {"size_mb": 0.1}}]
    budget = {"max_steps": 2, "max_epochs": -1, "limit_val_batches": 1, "accelerator": "cpu"}
    arguments = (TASK, load_space("tiny"), front, 1, KNOWLEDGE, SETTINGS, budget)
    (tmp_path / "run").mkdir()  # made by the search before it distils
    distill_front(*arguments, tmp_path / "run", cache_dir=cache)
    run = Path(shutil.move(tmp_path / "run", tmp_path / "moved"))
    students = distill_front(*arguments, run, cache_dir=cache)
    folder = Path(students[0]["student_dir"])
    assert folder.is_relative_to(run) and folder.is_dir()
    recorded = json.loads((run / "students.json").read_text())[0]["student_dir"]
    assert not Path(recorded).is_absolute() and run / recorded == folder
    options = ReportOptions(examples=4, export=False, flips=None, baseline=False)
    paths = report_run(TASK, run, options, student_folders=[folder], cache_dir=cache)
    [row] = [r for r in csv.DictReader(Path(paths["csv"]).read_text().splitlines()) if r["kind"] == "student"]
    assert row["path"] == recorded  # relative too: `avatar compare` matches the two
    (run / "pareto.json").write_text(json.dumps({"front": front}))
    assert best_student(read_run(run, "moved"))["latency_ms"] == float(row["latency_ms"])


@pytest.mark.slow
def test_train_py_resumes_a_copied_run_directory_as_itself(tmp_path: Path) -> None:
    """The entry point end to end (two cold starts, about 45 s on one core): a run directory is
    copied, the original deleted, and the same command with a larger budget and the copy's
    ``hydra.run.dir`` resumes from the copy's own ``last.ckpt`` and finishes there."""
    import os
    import subprocess
    import sys

    import numpy as np

    from tests.conftest import REPO
    from tests.test_resume import CANDIDATE

    task = DemoTask(size=200)
    gold = np.array([e.label for e in task.read_split("unlabel_train")])
    np.save(tmp_path / "gold.npy", (np.eye(2)[gold] * 6 - 3).astype(np.float32))
    env = {**os.environ, "AVATAR_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}

    def train(run: Path, steps: int) -> str:
        command = [
            sys.executable, "train.py", "stage=distill", "task=demo", "task.size=200", "space=tiny",
            "teacher=predictions", f"teacher.path={tmp_path / 'gold.npy'}", "teacher.kind=logits",
            f"candidate={CANDIDATE}", f"trainer.max_steps={steps}", "trainer.max_epochs=-1",
            "trainer.accelerator=cpu", "distill.checkpoint_every_n_steps=10", "logger=none",
            f"hydra.run.dir={run}",
        ]
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout + done.stderr

    train(tmp_path / "original", 20)
    shutil.copytree(tmp_path / "original", tmp_path / "copy")
    shutil.rmtree(tmp_path / "original")
    log = train(tmp_path / "copy", 40)
    [student] = (tmp_path / "copy" / "students").iterdir()
    assert f"from {student / 'checkpoints' / 'last.ckpt'}" in log
    assert_resumed_as_itself(student, DistillResult.from_dict(
        json.loads((student / "result.json").read_text()), base=student), steps=40)
    assert not (tmp_path / "original").exists()
