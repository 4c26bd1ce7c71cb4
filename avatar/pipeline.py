"""The pipeline's stages in order, composed from a Hydra config.

The entry points (``search.py``, ``train.py``) only hand their config and run directory
to these functions, so tests and notebooks call the same code with ``compose``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from avatar.errors import AvatarError
from avatar.io import atomic_write_bytes, atomic_write_json, plain
from avatar.objectives import MeterContext, Objectives, build_plugin
from avatar.progress import progress_bar
from avatar.registry import CONSTRAINTS, INDICATORS, TASKS
from avatar.search import SearchSettings, checkpoint_run_id, run_nsga2, write_pareto
from avatar.smt import Pruner
from avatar.space import Space
from avatar.task import Task
from avatar.tracking import create_logger

log = logging.getLogger("avatar")


def build_task(cfg: DictConfig, read_data: bool = True) -> Task:
    """The task plugin named by ``task.name``, checked against the task contract.

    ``task.data_dir`` defaults to ``paths.data``. ``avatar.contract.check_task`` reads
    every split once here, so a broken task fails in one line before any teacher work;
    ``read_data=False`` checks only its attributes (a run that never reads the data).
    """
    from avatar.contract import check_task

    options = dict(plain(cfg.task))
    name = options.pop("name")
    if options.get("data_dir") is None:
        options["data_dir"] = cfg.paths.get("data")
    try:
        task = TASKS.create(name, **options)
    except TypeError as error:
        raise AvatarError(f"task {name!r}: bad options {options}: {error}") from None
    check_task(task, registered_name=name, read_data=read_data)
    return task


def reads_data(cfg: DictConfig) -> bool:
    """Whether a search reads the task's data: it distils students, or its indicator needs data."""
    if int(cfg.distill.get("top_k", 0)) > 0:
        return True
    indicator = plain(cfg.get("indicator"))
    name = indicator.get("name") if isinstance(indicator, dict) else indicator
    if not name or name not in INDICATORS:
        return False  # no indicator; or an unknown one, which fails in one line when it is built
    return bool(getattr(INDICATORS.get(name), "reads_data", True))


def build_space(cfg: DictConfig) -> Space:
    return Space.from_config(plain(cfg.space.dimensions) or [])


def build_pruner(cfg: DictConfig, space: Space, num_labels: int) -> Pruner:
    constraints = [build_plugin(CONSTRAINTS, item) for item in plain(cfg.constraints.get("items")) or []]
    return Pruner(
        space,
        constraints,
        num_labels,
        timeout_ms=int(cfg.search.get("smt_timeout_ms", 10_000)),
        seed=int(cfg.search.seed),
    )


def search(cfg: DictConfig, run_dir: str | Path) -> dict[str, Any]:
    """Knowledge -> z3 pruning -> NSGA-II -> pareto.json (-> distillation, when top_k > 0)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    task = build_task(cfg, read_data=reads_data(cfg))
    space = build_space(cfg)
    settings = SearchSettings(**{k: v for k, v in plain(cfg.search).items() if k != "smt_timeout_ms"})

    started = time.perf_counter()
    pruner = build_pruner(cfg, space, task.num_labels)
    feasible = pruner.count_grid() if cfg.get("count_feasible", True) else None
    pruning_seconds = time.perf_counter() - started
    if feasible is not None:
        log.info("feasible: %s of %s candidates (%.2e)", f"{feasible:,}", f"{space.grid_size:,}",
                 feasible / space.grid_size)

    objectives = Objectives.from_config(plain(cfg.get("indicator")), plain(cfg.meters.get("items")) or [])
    extras = {"task": task, "cfg": cfg, "pruner": pruner}
    context = MeterContext(space, task.num_labels, str(run_dir), extras=extras)
    objectives.prepare(context)

    logger = create_logger(
        plain(cfg.get("logger")), str(run_dir), plain(cfg), run_id=checkpoint_run_id(run_dir)
    )
    try:
        started = time.perf_counter()
        with progress_bar("search (generations)", settings.generations) as update:
            result = run_nsga2(space, pruner, objectives, context, settings, run_dir, logger, progress=update)
        search_seconds = time.perf_counter() - started
        summary = {
            "task": task.name,
            "objectives": dict(zip(objectives.names, objectives.directions)),
            "constraints": [c.describe() for c in pruner.constraints],
            "space_size": space.grid_size,
            "feasible": feasible,
            "pruning_seconds": round(pruning_seconds, 3),
            "search_seconds": round(search_seconds, 3),
            "seed": settings.seed,
        }
        pareto_path = write_pareto(run_dir, result, summary)
        logger.log_table("pareto", [{**m["config"], **m["objectives"]} for m in result.front])
        log.info("Pareto front: %d members -> %s", len(result.front), pareto_path)

        outputs: dict[str, Any] = {}
        top_k = int(cfg.distill.get("top_k", 0))
        if top_k > 0:
            students = distill_front(cfg, task, space, result.front, top_k, run_dir)
            logger.log_table("students", [_student_row(s) for s in students])
            outputs["students"] = students
            outputs["report"] = report_search(cfg, task, run_dir, result.front, objectives.names, students)
    finally:
        logger.finish()
    return {"pareto": str(pareto_path), "front": result.front, **summary, **outputs}


def _student_row(student: dict[str, Any]) -> dict[str, Any]:
    """A flat wandb row: the student's configuration, promised objectives and measured metrics."""
    return {
        **student["candidate"],
        **{f"objective/{k}": v for k, v in student["objectives"].items()},
        **{k: v for k, v in student["metrics"].items()},
        "size_mb": student["size_mb"],
        "train_examples_per_second": student["train_examples_per_second"],
    }


def spread(front: list[dict[str, Any]], k: int) -> list[int]:
    """``k`` indices spread evenly along the front (both ends included)."""
    if k >= len(front):
        return list(range(len(front)))
    if k == 1:
        return [len(front) // 2]
    return sorted({round(i * (len(front) - 1) / (k - 1)) for i in range(k)})


def distill_front(
    cfg: DictConfig, task: Task, space: Space, front: list[dict[str, Any]], top_k: int, run_dir: Path
) -> list[dict[str, Any]]:
    """Distil ``top_k`` Pareto members spread across the front into ``run_dir/students/``.

    Each student trains in its own folder; a rerun resumes each from its last checkpoint.
    """
    from avatar.distill import DistillSettings, distill_candidate, student_key
    from avatar.teacher import knowledge_for

    knowledge = knowledge_for(cfg, task, run_dir)
    settings = DistillSettings.from_config(plain(cfg.get("distill")), plain(cfg.get("trainer")))
    chosen = spread(front, top_k)
    students = []
    for number, index in enumerate(chosen, start=1):
        candidate = space.validate(front[index]["config"])
        out_dir = run_dir / "students" / student_key(candidate)
        log.info("distilling Pareto member %d (%d of %d) into %s", index, number, len(chosen), out_dir)
        result = distill_candidate(candidate, task, knowledge, settings, out_dir, cache_dir=cfg.paths.cache)
        students.append({"front_index": index, "objectives": front[index]["objectives"], **result.to_dict()})
        atomic_write_json(run_dir / "students.json", students)
    return students


def report_search(
    cfg: DictConfig,
    task: Task,
    run_dir: Path,
    front: list[dict[str, Any]],
    objective_names: list[str],
    students: list[dict[str, Any]],
) -> dict[str, str]:
    """``report.md``/``.csv``/``.png`` (teacher and students measured side by side) and ``pareto.png``."""
    from avatar.report import build_report, measure_model, render_pareto_png, student_rows
    from avatar.teacher import build_teacher, teacher_context

    options = plain(cfg.get("report")) or {}
    examples, split = int(options.get("examples") or 200), str(options.get("split") or "test")
    rows = []
    teacher_dir = options.get("teacher")
    if not teacher_dir:
        teacher = build_teacher(cfg)
        model_dir = getattr(teacher, "model_dir", None)
        if model_dir is not None:
            candidate_dir = model_dir(task, teacher_context(cfg, run_dir))
            teacher_dir = str(candidate_dir) if Path(candidate_dir).is_dir() else None
    if teacher_dir:
        rows.append(measure_model(teacher_dir, task, "torch", examples, split, kind="teacher"))
    else:
        log.info("report: the teacher is a predictions file; no teacher model to measure")
    export = bool(options.get("export", True))
    for student in students:
        if student.get("student_dir"):
            rows.extend(student_rows(student["student_dir"], task, examples, split, export))
    paths = {k: str(v) for k, v in build_report(rows, run_dir, title=f"Avatar report: {task.name}").items()}
    distilled = {json.dumps(s["candidate"], sort_keys=True) for s in students}
    marks = [json.dumps(m["config"], sort_keys=True) in distilled for m in front]
    atomic_write_bytes(run_dir / "pareto.png", render_pareto_png(front, objective_names, marks))
    paths["pareto_png"] = str(run_dir / "pareto.png")
    log.info("report: %s", paths["md"])
    return paths


STAGES = {
    "teacher": "avatar.teacher:run_teacher_stage",
    "distill": "avatar.distill:run_distill_stage",
    "report": "avatar.report:run_report_stage",
}


def train(cfg: DictConfig, run_dir: str | Path) -> Any:
    """``train.py``: run the stage named by ``cfg.stage`` in ``run_dir``."""
    import importlib

    stage = str(cfg.get("stage"))
    if stage not in STAGES:
        raise AvatarError(f"unknown stage {stage!r}; known stages: {', '.join(STAGES)}")
    module_name, function_name = STAGES[stage].split(":")
    function = getattr(importlib.import_module(module_name), function_name)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    return function(cfg, Path(run_dir))
