"""Bad input: one clear line each, an ``AvatarError`` (exit code 2 at the CLI), nothing half-written.

Table-driven: each case builds its bad input in a temporary folder, runs the real code
path, and asserts the message. The CLI's translation to one stderr line and exit code 2
is checked once per entry point in ``test_cli_search.py`` and below.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from avatar.errors import AvatarError
from avatar.objectives import Objectives
from avatar.registry import CONSTRAINTS, TASKS, TEACHERS
from avatar.search import SearchSettings
from avatar.smt import Pruner
from avatar.space import Space
from tests.conftest import REPO
from tests.helpers import load_space


def _compose(*overrides: str):
    with initialize_config_dir(str(REPO / "configs"), version_base="1.3"):
        return compose("search", overrides=list(overrides))


def unknown_constraint(tmp: Path) -> None:
    CONSTRAINTS.build({"name": "sizes"})


def unknown_task(tmp: Path) -> None:
    TASKS.get("vulnerability")


def unknown_meter(tmp: Path) -> None:
    Objectives.from_config("flops", [{"name": "watts"}])


def bad_override_type(tmp: Path) -> None:
    SearchSettings(population="forty")  # type: ignore[arg-type]


def too_small_population(tmp: Path) -> None:
    SearchSettings(population=1)


def bad_constraint_option(tmp: Path) -> None:
    CONSTRAINTS.build({"name": "size", "max_mb": -1})


def dimension_without_values(tmp: Path) -> None:
    Space.from_config([{"name": "hidden_size", "choices": []}])


def unsat_constraint_set(tmp: Path) -> None:
    Pruner(load_space("tiny"), [CONSTRAINTS.create("size", max_mb=0.0001)], 2)


def missing_data_root(tmp: Path) -> None:
    TASKS.create("vuln", data_dir=str(tmp / "nowhere")).read_split("test")


def malformed_jsonl_line(tmp: Path) -> None:
    folder = tmp / "devign"
    folder.mkdir()
    good = json.dumps({"func": "int f(){}", "target": 0, "idx": 0})
    for name in ("train.jsonl", "valid.jsonl"):
        (folder / name).write_text(good + "\n")
    (folder / "test.jsonl").write_text(good + "\n" + '{"func": "int g(){}", "target": \n')
    TASKS.create("vuln", data_dir=str(folder)).read_split("test")


def pair_with_unknown_function(tmp: Path) -> None:
    folder = tmp / "bigclonebench"
    folder.mkdir()
    (folder / "data.jsonl").write_text(json.dumps({"idx": "1", "func": "void a(){}"}) + "\n")
    for name in ("label_train.txt", "unlabel_train.txt", "valid_sampled.txt"):
        (folder / name).write_text("1\t1\t1\t1\n")
    (folder / "test_sampled.txt").write_text("1\t1\t1\n1\t99\t0\n")
    TASKS.create("clone", data_dir=str(folder)).read_split("test")


def teacher_hub_id_offline(tmp: Path) -> None:
    from avatar.plugins.teachers.huggingface import load_pretrained

    load_pretrained("microsoft/codebert-base", 2)


def predictions_of_wrong_length(tmp: Path) -> None:
    from avatar.teacher import TeacherContext

    path = tmp / "logits.npy"
    np.save(path, np.zeros((7, 2), dtype=np.float32))
    task = TASKS.create("demo", size=12)
    teacher = TEACHERS.create("predictions", path=str(path))
    teacher.produce(task, TeacherContext(tmp, tmp, {}))


def unknown_logger(tmp: Path) -> None:
    from avatar.tracking import create_logger

    create_logger({"name": "tensorboard"}, str(tmp), {})


def unreadable_checkpoint(tmp: Path) -> None:
    from avatar.objectives import MeterContext
    from avatar.search import run_nsga2

    (tmp / "search_checkpoint.json").write_text('{"generation": 3, "popul')
    space = load_space("tiny")
    pruner = Pruner(space, [CONSTRAINTS.create("heads")], 2)
    objectives = Objectives.from_config("flops", ["size_mb"])
    run_nsga2(space, pruner, objectives, MeterContext(space, 2), SearchSettings(population=4), tmp)


def candidate_outside_space(tmp: Path) -> None:
    load_space("tiny").validate({"hidden_size": 17})


def unknown_stage(tmp: Path) -> None:
    from avatar.stages import train

    with initialize_config_dir(str(REPO / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=["stage=evaluate"])
    train(cfg, tmp)


def unknown_indicator_from_config(tmp: Path) -> None:
    cfg = _compose("indicator.name=oracle")
    Objectives.from_config(dict(cfg.indicator), [])


def out_of_memory_batch(tmp: Path) -> None:
    import torch

    from avatar.training import explain_out_of_memory

    with explain_out_of_memory(64, "distilling a student"):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


CASES: list[tuple[Callable[[Path], None], str]] = [
    (unknown_constraint, "unknown constraint 'sizes'; known constraints: flops, heads, size"),
    (unknown_task, "unknown task 'vulnerability'; known tasks: clone, demo, vuln"),
    (unknown_meter, "unknown meter 'watts'; known meters:"),
    (bad_override_type, "search.population must be int, got 'forty'"),
    (too_small_population, "search.population must be at least 2"),
    (bad_constraint_option, "constraint 'size': bad options"),
    (dimension_without_values, "space dimension 'hidden_size' has no values"),
    (unsat_constraint_set, "unsatisfiable over this space: size(max_mb=0.0001)"),
    (missing_data_root, "nowhere does not exist; get the data from"),
    (malformed_jsonl_line, "test.jsonl:2"),
    (pair_with_unknown_function, "test_sampled.txt:2: unknown function id 99"),
    (teacher_hub_id_offline, "teacher.path=<local dir>"),
    (predictions_of_wrong_length, "logits.npy: 7 predictions, but task demo has 12 unlabeled examples"),
    (unknown_logger, "unknown logger 'tensorboard'; known loggers: none, wandb"),
    (unreadable_checkpoint, "unreadable search checkpoint"),
    (candidate_outside_space, "candidate does not fit the space"),
    (unknown_stage, "unknown stage 'evaluate'; known stages: teacher, distill, report"),
    (out_of_memory_batch, "out of memory while distilling a student at batch size 64: restrict the space's"),
    (unknown_indicator_from_config, "unknown indicator 'oracle'; known indicators: flops, surrogate"),
]


@pytest.mark.parametrize("case, message", CASES, ids=[case.__name__ for case, _ in CASES])
def test_bad_input_is_one_clear_line(case: Callable[[Path], None], message: str, tmp_path: Path) -> None:
    random.seed(0)
    with pytest.raises(AvatarError) as error:
        case(tmp_path)
    text = str(error.value)
    assert message in text
    assert "\n" not in text and "Traceback" not in text


def test_unwritable_output_dir_is_one_line_before_hydra(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = subprocess.run(
        [sys.executable, "search.py", f"hydra.run.dir={blocker}/run", "distill.top_k=0"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().startswith(f"error: output directory {blocker}/run is not writable")
    assert len(done.stderr.strip().splitlines()) == 1
