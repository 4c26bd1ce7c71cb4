"""The configuration layer: a composed Hydra config becomes objects here, and only here.

``search.py`` and ``train.py`` hand their config and run directory to ``search`` and
``train``; every other module of ``avatar/`` and every plugin receives objects (a task, a
space, a pruner, a teacher, its knowledge, objectives) and plain settings, never the
config. Reading the whole pipeline top to bottom:

1. task (``task``), space (``space``), z3 pruner (``constraints``, ``search``);
2. teacher (``teacher``; its own Lightning budget ``teacher.trainer``) and its knowledge,
   computed at most once per command and only when something needs it;
3. objectives (``indicator``, ``meters``), prepared with a ``MeterContext`` that carries the
   knowledge (the surrogate's brief runs read it there, with their own budget);
4. the search (``avatar.search.evolve``, ``search.algorithm``: NSGA-II by default) -> ``pareto.json``;
5. distillation of ``distill.top_k`` members (``distill`` + the students' ``trainer``);
6. the report (``report``): teacher and students measured side by side.

Three Lightning budgets, three config nodes: ``trainer`` (students), ``teacher.trainer``
(the teacher's fine-tuning) and the indicator's brief-run budget. Hardware keys
(``accelerator``, ``devices``, ``strategy``, ``num_nodes``, ``precision``) set in
``trainer`` apply to all three unless a node sets its own.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from avatar.core.errors import AvatarError
from avatar.core.io import atomic_write_json, plain, portable_path
from avatar.core.progress import progress_bar
from avatar.core.registry import CONSTRAINTS, EXECUTORS, INDICATORS, TEACHERS
from avatar.distill.front import distill_front, student_curves, students_estimate
from avatar.distill.race import RaceSettings
from avatar.distill.settings import DistillSettings, student_key
from avatar.distill.student import default_cache_dir
from avatar.distill.train import distill_candidate
from avatar.learn.training import check_trainer_options, wall_clock_seconds
from avatar.report.notes import greening_cost, logits_teacher_note, placement_note
from avatar.report.stage import ReportOptions, report_run
from avatar.run.estimate import say_expected
from avatar.run.executor import Executor
from avatar.run.runlock import locked_run
from avatar.run.tracking import create_logger
from avatar.search.evolve import SearchSettings, checkpoint_run_id, run_search, write_pareto
from avatar.search.objectives import MeterContext, Objectives
from avatar.search.smt import Pruner
from avatar.search.space import Candidate, Space
from avatar.task.base import Task
from avatar.task.build import build_task as build_named_task
from avatar.teach.teacher import (
    Knowledge,
    Teacher,
    TeacherContext,
    cache_path,
    collapse_warning,
    describe_knowledge,
    teacher_knowledge,
    weak_teacher_warning,
)

log = logging.getLogger("avatar")

HARDWARE_KEYS = ("accelerator", "devices", "strategy", "num_nodes", "precision")
"""Trainer keys that describe the machine rather than a budget: shared by all three trainings."""


# ------------------------------------------------------------------------------ builders


def build_task(cfg: DictConfig, read_data: bool = True) -> Task:
    """The task plugin named by ``task.name``; ``task.data_dir`` defaults to ``paths.data``."""
    options = dict(plain(cfg.task))
    name = options.pop("name")
    if options.get("data_dir") is None:
        options["data_dir"] = cfg.paths.get("data")
    return build_named_task(name, options, read_data=read_data)


def build_space(cfg: DictConfig) -> Space:
    return Space.from_config(plain(cfg.space.dimensions) or [])


def build_pruner(cfg: DictConfig, space: Space, num_labels: int) -> Pruner:
    constraints = [CONSTRAINTS.build(item) for item in plain(cfg.constraints.get("items")) or []]
    return Pruner(space, constraints, num_labels, timeout_ms=int(cfg.search.get("smt_timeout_ms", 10_000)),
                  seed=int(cfg.search.seed))


def build_objectives(cfg: DictConfig) -> Objectives:
    meters = plain(cfg.meters.get("items")) if cfg.get("meters") else []
    return Objectives.from_config(plain(cfg.get("indicator")), meters or [])


def student_trainer(cfg: DictConfig) -> dict[str, Any]:
    """The students' Lightning options (``trainer``), checked against ``lightning.Trainer``."""
    return check_trainer_options(plain(cfg.get("trainer")) or {}, "trainer")


def hardware(cfg: DictConfig) -> dict[str, Any]:
    """The machine keys of ``trainer`` (accelerator, devices, ...) that every training shares."""
    return {k: v for k, v in student_trainer(cfg).items() if k in HARDWARE_KEYS}


def teacher_spec(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(plugin options, Lightning options)`` of ``teacher``: its ``trainer`` node is the budget."""
    spec = dict(plain(cfg.get("teacher")) or {})
    if not spec:
        raise AvatarError("no teacher configured: pick one with teacher=<name> (e.g. teacher=codebert)")
    budget = check_trainer_options(spec.pop("trainer", None) or {}, "teacher.trainer")
    return spec, {**hardware(cfg), **budget}


def build_teacher(cfg: DictConfig) -> Teacher:
    return TEACHERS.build(teacher_spec(cfg)[0], where="teacher")


def cache_dir(cfg: DictConfig) -> Path:
    configured = cfg.get("paths", {}).get("cache")
    return Path(str(configured)).expanduser() if configured else default_cache_dir()


def build_executor(cfg: DictConfig) -> Executor:
    """Where the independent units run (``executor``: local or ray); built before any work, so a
    bad option fails at once. Ray itself starts only when a map has work."""
    return EXECUTORS.build(plain(cfg.get("executor")) or "local", where="executor")


def distill_settings(cfg: DictConfig) -> DistillSettings:
    return DistillSettings.from_config(plain(cfg.get("distill")))


def report_options(cfg: DictConfig) -> ReportOptions:
    return ReportOptions.from_config(plain(cfg.get("report")) or {})


# ---------------------------------------------------------------------- teacher knowledge


@dataclass
class TeacherParts:
    """The teacher of one command and its knowledge, computed at most once (lazily)."""

    task: Task
    teacher: Teacher
    context: TeacherContext
    summary: dict[str, Any] = field(default_factory=dict)

    @functools.cached_property
    def knowledge(self) -> Knowledge:
        started = time.perf_counter()
        knowledge, from_cache, path = teacher_knowledge(self.task, self.teacher, self.context)
        seconds = time.perf_counter() - started
        log.info(describe_knowledge(knowledge, from_cache, path, seconds))
        warning = collapse_warning(knowledge)
        for line in (warning, weak_teacher_warning(knowledge)):
            if line:
                log.warning(line)
        self.summary.update(
            task=self.task.name, teacher=knowledge.teacher, examples=len(knowledge), soft=knowledge.soft,
            from_cache=from_cache, cache_path=str(path), gold_agreement=knowledge.gold_agreement(),
            collapsed=warning is not None,
            seconds=round(seconds, 3),
        )
        return knowledge

    def check_ready(self) -> None:
        if not cache_path(self.context.cache_dir, self.task, self.teacher, self.context).is_file():
            self.teacher.check_ready(self.task, self.context)

    def model_dir(self) -> Path | None:
        """The fine-tuned teacher's folder when the plugin has one on disk (for the report)."""
        folder = self.teacher.model_dir(self.task, self.context)
        return folder if folder is not None and Path(folder).is_dir() else None


def teacher_parts(cfg: DictConfig, task: Task, run_dir: Path | None = None) -> TeacherParts:
    """The configured teacher, where it writes (``run_dir``, default the cache) and its budget."""
    spec, budget = teacher_spec(cfg)
    root = cache_dir(cfg)
    context = TeacherContext(cache_dir=root, run_dir=run_dir or root / "teacher_runs", trainer=budget)
    return TeacherParts(task, TEACHERS.build(spec, where="teacher"), context)


# ---------------------------------------------------------------------------------- search


def check_one_process(machine: dict[str, Any]) -> None:
    """``search.py`` trains many small models, each in one process; several devices per run is for
    one long training (``train.py``), and many runs side by side is the executor's job."""
    devices, nodes = machine.get("devices", 1), machine.get("num_nodes", 1)
    if str(devices) != "1" or str(nodes) != "1":
        raise AvatarError(
            f"search.py runs each training on one device (got trainer.devices={devices}, "
            f"trainer.num_nodes={nodes}): run many side by side with executor=ray "
            "(executor.gpus_per_run=0.25 packs four students on a GPU), or train one teacher or student "
            "on several with train.py stage=teacher|distill trainer.devices=N trainer.strategy=ddp "
            "(docs/scale.md)"
        )


@dataclass
class SearchPlan:
    """Everything a search needs, built and checked from the config before the long work starts."""

    settings: SearchSettings
    students_trainer: dict[str, Any]
    distill: DistillSettings
    report: ReportOptions
    space: Space
    task: Task
    teacher: TeacherParts | None
    top_k: int
    executor: Executor
    race: RaceSettings


def top_k(cfg: DictConfig) -> int:
    """``distill.top_k``: how many Pareto members to distil (0: none), checked before any work."""
    value = cfg.distill.get("top_k", 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise AvatarError(f"distill.top_k must be an integer >= 0 (0: no students), got {value!r}")
    return value


def plan_search(cfg: DictConfig, run_dir: Path) -> SearchPlan:
    """The search's objects, each checked now: a typo or a teacher that cannot load fails in seconds."""
    check_one_process(hardware(cfg))
    needs_teacher = reads_data(cfg)
    task = build_task(cfg, read_data=needs_teacher)
    plan = SearchPlan(
        settings=SearchSettings(**{k: v for k, v in plain(cfg.search).items() if k != "smt_timeout_ms"}),
        students_trainer=student_trainer(cfg),
        distill=distill_settings(cfg).for_task(task),
        report=report_options(cfg),
        space=build_space(cfg),
        task=task,
        teacher=teacher_parts(cfg, task, run_dir) if needs_teacher else None,
        top_k=top_k(cfg),
        executor=build_executor(cfg),
        race=RaceSettings.from_config(plain(cfg.distill.get("race"))),
    )
    if plan.teacher is not None:
        plan.teacher.check_ready()  # a teacher that cannot load fails now, not after the pruning
    return plan


@locked_run
def search(cfg: DictConfig, run_dir: str | Path) -> dict[str, Any]:
    """Knowledge -> z3 pruning -> search -> pareto.json (-> distillation and report, when top_k > 0)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    say_expected(plain(cfg.get("estimate")), "this run")
    plan = plan_search(cfg, run_dir)
    try:
        return _search(cfg, run_dir, plan)
    finally:
        plan.executor.close()


def _search(cfg: DictConfig, run_dir: Path, plan: SearchPlan) -> dict[str, Any]:
    settings, space, task, teacher, executor = (plan.settings, plan.space, plan.task, plan.teacher,
                                                plan.executor)
    objectives = build_objectives(cfg)
    space = objectives.measured_space(space)  # what the indicator measured at one value stays there
    started = time.perf_counter()
    pruner = build_pruner(cfg, space, task.num_labels)
    feasible = pruner.count_grid() if cfg.get("count_feasible", True) else None
    pruning_seconds = time.perf_counter() - started
    if feasible is not None:
        log.info("feasible: %s of %s candidates (%.2e)", f"{feasible:,}", f"{space.grid_size:,}",
                 feasible / space.grid_size)
    students = plan.distill  # brief runs that stand for the students train as they do
    context = MeterContext(
        space, task.num_labels, str(run_dir), task=task, pruner=pruner, cache_dir=cache_dir(cfg),
        trainer=hardware(cfg), knowledge=(lambda: teacher.knowledge) if teacher is not None else None,
        executor=executor, student_seconds=wall_clock_seconds(student_trainer(cfg), "trainer.max_time"),
        student_group_by_length=students.group_by_length, student_canonical_names=students.canonical_names,
    )
    objectives.prepare(context)
    executor.close()  # the measured meters (the search) and the report run with no Ray beside them

    run_id = checkpoint_run_id(run_dir)
    logger = create_logger(plain(cfg.get("logger")), str(run_dir), plain(cfg), run_id=run_id)
    try:
        started = time.perf_counter()
        with progress_bar("search (generations)", settings.generations) as update:
            result = run_search(
                space, pruner, objectives, context, settings, run_dir, logger, progress=update
            )
        summary = {
            "task": task.name,
            "objectives": dict(zip(objectives.names, objectives.directions)),
            "constraints": [c.describe() for c in pruner.constraints],
            "space_size": space.grid_size,
            "feasible": feasible,
            "pruning_seconds": round(pruning_seconds, 3),
            "search_seconds": round(time.perf_counter() - started, 3),
            "seed": settings.seed,
            "algorithm": settings.algorithm,
        }
        pareto_path = write_pareto(run_dir, result, summary)
        logger.log_table("pareto", [{**m["config"], **m["objectives"]} for m in result.front])
        log.info("Pareto front: %d members -> %s", len(result.front), pareto_path)

        outputs: dict[str, Any] = {}
        if plan.top_k > 0 and teacher is not None:
            log.info("students: %s", students_estimate(plan.top_k, plan.students_trainer, executor.workers,
                                                       plan.distill.min_steps))
            students = distill_front(
                task, space, result.front, plan.top_k, teacher.knowledge, plan.distill, plan.students_trainer,
                run_dir, cache_dir=cache_dir(cfg), executor=executor, race=plan.race,
            )
            executor.close()
            logger.log_table("students", [_student_row(s) for s in students])
            logger.log_table("student_curves", student_curves(students))
            outputs["students"] = students
            teacher_dir = plan.report.teacher or teacher.model_dir()
            notes = [placement_note(executor)]
            if not teacher_dir:
                notes.append(logits_teacher_note(teacher.teacher, teacher.knowledge))
            outputs["report"] = report_run(
                task, run_dir, plan.report, teacher_dir=teacher_dir,
                teacher_architecture=teacher.teacher.architecture, teacher_name=teacher.teacher.model_name,
                student_folders=[Path(s["student_dir"]) for s in students if s.get("student_dir")],
                front=result.front, objective_names=objectives.names, students=students,
                greening=greening_cost(run_dir, students),
                notes=notes, cache_dir=cache_dir(cfg),
            )
    finally:
        logger.finish()
    return {"pareto": str(pareto_path), "front": result.front, **summary, **outputs}


def reads_data(cfg: DictConfig) -> bool:
    """Whether a search reads the teacher's knowledge, and so the task's data: it distils
    students, or its indicator needs the knowledge (the surrogate)."""
    if top_k(cfg) > 0:
        return True
    indicator = plain(cfg.get("indicator"))
    name = indicator.get("name") if isinstance(indicator, dict) else indicator
    if not name or name not in INDICATORS:
        return False  # no indicator; or an unknown one, which fails in one line when it is built
    return bool(INDICATORS.get(name).needs_knowledge)


def _student_row(student: dict[str, Any]) -> dict[str, Any]:
    """A flat wandb row: the student's configuration, promised objectives and measured metrics."""
    return {
        **student["candidate"],
        **{f"objective/{k}": v for k, v in student["objectives"].items()},
        **dict(student["metrics"]),
        "size_mb": student["size_mb"],
        "collapsed": bool(student.get("collapsed")),
        "train_examples_per_second": student["train_examples_per_second"],
        "train_energy_kwh": student.get("train_energy_kwh"),
    }




# ----------------------------------------------------------------------------- train.py


def resolve_candidate(cfg: DictConfig, space: Space) -> Candidate:
    """``cfg.candidate``: an index into ``cfg.pareto``'s front, or an inline dict checked by the space."""
    value = plain(cfg.get("candidate"))
    if isinstance(value, dict):
        return space.validate(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise AvatarError(f"candidate must be an index into the Pareto front or a dict, got {value!r}")
    pareto = cfg.get("pareto")
    if not pareto:
        raise AvatarError("candidate=<index> needs pareto=<path to pareto.json> (written by search.py)")
    path = Path(str(pareto))
    try:
        front = json.loads(path.read_text(encoding="utf-8"))["front"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise AvatarError(f"cannot read the Pareto front from {path}: {error}") from None
    if not -len(front) <= value < len(front):
        raise AvatarError(f"candidate={value} is out of range: {path} has {len(front)} Pareto members")
    config = front[value].get("config") if isinstance(front[value], dict) else None
    if not isinstance(config, dict):
        raise AvatarError(f"{path}: front[{value}] has no 'config' mapping")
    return Candidate.from_dict(config)


def teacher_stage(cfg: DictConfig, run_dir: Path) -> Knowledge:
    """``train.py stage=teacher``: cached teacher knowledge, and ``teacher.json`` in ``run_dir``."""
    parts = teacher_parts(cfg, build_task(cfg), run_dir)
    knowledge = parts.knowledge
    folder = parts.model_dir()  # where the fine-tuned teacher lives, for `stage=report report.teacher=`
    summary = {**parts.summary, "model_dir": portable_path(folder, run_dir) if folder else None}
    summary["cache_path"] = portable_path(summary["cache_path"], run_dir)  # both absolute unless in the run
    atomic_write_json(run_dir / "teacher.json", summary)
    return knowledge


def distill_stage(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """``train.py stage=distill``: distil one candidate into ``run_dir/students/<key>/``."""
    task = build_task(cfg)
    candidate = resolve_candidate(cfg, build_space(cfg))
    settings, trainer = distill_settings(cfg), student_trainer(cfg)
    knowledge = teacher_parts(cfg, task).knowledge
    out_dir = run_dir / "students" / student_key(candidate)
    log.info("distilling %s into %s", candidate, out_dir)
    result = distill_candidate(
        candidate, task, knowledge, settings, out_dir, trainer=trainer, cache_dir=cache_dir(cfg)
    )
    log.info("student %s: %s", out_dir, {k: round(v, 4) for k, v in result.metrics.items()})
    return result.to_dict()


def report_stage(cfg: DictConfig, run_dir: Path) -> dict[str, str]:
    """``train.py stage=report``: the teacher and students named by ``report``, side by side.

    Without ``report.teacher``, a teacher that has no model folder of its own (a predictions
    file) and names its architecture gets the cost row the search's report gives it.
    """
    options = report_options(cfg)
    task = build_task(cfg)
    parts = None if options.teacher or cfg.get("teacher") is None else teacher_parts(cfg, task)
    teacher = parts.teacher if parts is not None else None
    shape_only = parts is not None and parts.teacher.model_dir(task, parts.context) is None
    return report_run(task, run_dir, options, teacher_dir=options.teacher,
                      teacher_architecture=teacher.architecture if shape_only else None,
                      teacher_name=teacher.model_name if shape_only else "teacher", cache_dir=cache_dir(cfg))


STAGES = {"teacher": teacher_stage, "distill": distill_stage, "report": report_stage}


@locked_run
def train(cfg: DictConfig, run_dir: str | Path) -> Any:
    """``train.py``: run the stage named by ``cfg.stage`` in ``run_dir``."""
    stage = str(cfg.get("stage"))
    if stage not in STAGES:
        raise AvatarError(f"unknown stage {stage!r}; known stages: {', '.join(STAGES)}")
    student_trainer(cfg)  # fail fast on a mistyped trainer option, before any work
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    return STAGES[stage](cfg, Path(run_dir))
