"""The pipeline's stages in order, composed from a Hydra config.

The entry points (``search.py``, ``train.py``) only hand their config and run directory
to these functions, so tests and notebooks call the same code with ``compose``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from avatar.errors import AvatarError
from avatar.objectives import MeterContext, Objectives, build_plugin
from avatar.progress import progress_bar
from avatar.registry import CONSTRAINTS, TASKS
from avatar.search import SearchSettings, checkpoint_run_id, run_nsga2, write_pareto
from avatar.smt import Pruner
from avatar.space import Space
from avatar.task import Task
from avatar.tracking import create_logger

log = logging.getLogger("avatar")


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) or OmegaConf.is_list(
        node
    ) else node


def build_task(cfg: DictConfig) -> Task:
    """The task plugin named by ``task.name``; ``task.data_dir`` defaults to ``paths.data``."""
    options = dict(_plain(cfg.task))
    name = options.pop("name")
    if options.get("data_dir") is None:
        options["data_dir"] = cfg.paths.get("data")
    try:
        return TASKS.create(name, **options)
    except TypeError as error:
        raise AvatarError(f"task {name!r}: bad options {options}: {error}") from None


def build_space(cfg: DictConfig) -> Space:
    return Space.from_config(_plain(cfg.space.dimensions) or [])


def build_pruner(cfg: DictConfig, space: Space, num_labels: int) -> Pruner:
    constraints = [build_plugin(CONSTRAINTS, item) for item in _plain(cfg.constraints.get("items")) or []]
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
    task = build_task(cfg)
    space = build_space(cfg)
    settings = SearchSettings(**{k: v for k, v in _plain(cfg.search).items() if k != "smt_timeout_ms"})

    started = time.perf_counter()
    pruner = build_pruner(cfg, space, task.num_labels)
    feasible = pruner.count_grid() if cfg.get("count_feasible", True) else None
    pruning_seconds = time.perf_counter() - started
    if feasible is not None:
        log.info("feasible: %s of %s candidates (%.2e)", f"{feasible:,}", f"{space.grid_size:,}",
                 feasible / space.grid_size)

    objectives = Objectives.from_config(_plain(cfg.get("indicator")), _plain(cfg.meters.get("items")) or [])
    extras = {"task": task, "cfg": cfg, "pruner": pruner}
    context = MeterContext(space, task.num_labels, str(run_dir), extras=extras)
    objectives.prepare(context)

    logger = create_logger(
        _plain(cfg.get("logger")), str(run_dir), _plain(cfg), run_id=checkpoint_run_id(run_dir)
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
    finally:
        logger.finish()
    log.info("Pareto front: %d members -> %s", len(result.front), pareto_path)

    top_k = int(cfg.distill.get("top_k", 0))
    if top_k > 0:
        raise AvatarError(
            "distillation of Pareto members is not available yet; run with distill.top_k=0"
        )
    return {"pareto": str(pareto_path), "front": result.front, **summary}


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
