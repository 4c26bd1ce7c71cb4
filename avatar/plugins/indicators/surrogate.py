"""The paper's effectiveness indicator: a surrogate model of a brief distillation's result.

Why a surrogate: distilling every candidate the search visits would take days on a laptop.
Instead K feasible candidates, picked by adaptive random sampling (diverse by construction;
``sampling=lhs``: a Latin hypercube over the z3-feasible space), are each distilled on a
small budget (``train_examples``, or ``budget_seconds`` of wall-clock time), all at one
learning rate; a regression (``regressor``: the paper's Bayesian ridge, gradient boosting or
a Gaussian process, ``avatar.search.regression``) maps an encoded configuration to the run's
negated validation loss (the paper's: its validation headline metric, ``target=headline``),
and its prediction is the effectiveness objective. Both choices were measured on real
BigCloneBench (docs/benchmarks.md, "Effectiveness indicator"): a brief run at a small
learning rate mostly stays on its first plateau, so with each candidate's own rate the runs
measured the rate; and the loss still ranks runs that all collapse to one class, where
accuracy ties. The K runs and the fitted model are cached under
``<paths.cache>/surrogate/``, keyed by everything a run's score depends on (``cache_key``:
task, labels, data, teacher knowledge, budget, ``SURROGATE_FORMAT``), so later searches on
the same task and teacher (other seeds, other constraint sets) reuse them; an interrupted
preparation resumes at the first missing run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from avatar.code.metamorphic import canonical_split, metamorphic_copy, supports
from avatar.core.errors import AvatarError, DataError
from avatar.core.io import append_jsonl, atomic_write_json, cache_lock, discard_corrupt, read_jsonl
from avatar.core.progress import progress_bar
from avatar.core.registry import INDICATORS
from avatar.distill.brief import BriefRun, brief_run
from avatar.distill.front import training_cost
from avatar.distill.settings import DistillSettings
from avatar.distill.student import build_tokenizer
from avatar.distill.train import undecided_teacher
from avatar.learn.curves import extrapolate
from avatar.run.executor import LocalExecutor
from avatar.search.objectives import Direction, EffectivenessIndicator, MeterContext
from avatar.search.regression import (
    check_regressor,
    fit_regressor,
    leave_one_out_error,
    linear_summary,
    mean_predictor_error,
)
from avatar.search.space import Candidate, Space
from avatar.task.base import label_signature

log = logging.getLogger("avatar")

ROBUSTNESS_EXAMPLES = 200
"""Validation examples whose flips a brief run counts (``robustness``): 2 x 200 predictions."""
PREDICTED_FLIP_RATE = "flip_rate"
"""The robustness objective's name: the predicted share of validation examples that flip."""

SAMPLINGS = ("adaptive", "lhs")
"""How the brief runs' candidates are drawn: adaptive random (maximin) or a Latin hypercube."""
SURROGATE_FORMAT = 2
"""Version of the cached runs: bump it when a brief distillation's recipe or record changes."""


def encode(space: Space, candidate: Candidate, skip: frozenset[str] = frozenset()) -> list[float]:
    """Features of a configuration: numbers scaled to [0, 1] (log scale when they span
    more than 10x), other choices one-hot. Fixed by the space, so cached fits stay valid.
    Dimensions in ``skip`` (ones the brief runs held fixed) carry no signal and are left out."""
    features: list[float] = []
    for dim in space.dimensions:
        if dim.name in skip:
            continue
        value = candidate[dim.name]
        numeric = all(isinstance(c, int | float) and not isinstance(c, bool) for c in dim.choices)
        if numeric and len(dim) > 1:
            low, high = min(dim.choices), max(dim.choices)
            if low > 0 and high / low > 10:
                features.append((math.log(value) - math.log(low)) / (math.log(high) - math.log(low)))
            else:
                features.append((value - low) / (high - low))
        elif not numeric:
            features.extend(1.0 if value == choice else 0.0 for choice in dim.choices)
    return features


def _read_runs(path: Path) -> dict[str, dict[str, Any]]:
    """The cached brief runs by candidate key; a file that does not read (a damaged line, a
    record without its fields) is reported, deleted and redone. A torn last line (a killed
    writer) is only skipped: the runs before it stand."""
    if not path.exists():
        return {}
    try:
        records = read_jsonl(path, tolerate_torn_tail=True)
        for number, record in enumerate(records, start=1):
            if not isinstance(record.get("key"), str) or not isinstance(record.get("metric"), int | float):
                raise DataError(f"record {number} lacks a key or a metric")
    except DataError as error:
        discard_corrupt(path, error)
        return {}
    return {record["key"]: record for record in records}


@INDICATORS.register("surrogate")
class SurrogateIndicator(EffectivenessIndicator):
    needs_knowledge = True  # the configuration layer provides the teacher's knowledge

    def __init__(
        self,
        samples: int = 20,
        max_steps: int | None = None,
        train_examples: int | None = 2000,
        eval_examples: int | None = 400,
        seed: int = 0,
        sample_pool: int = 4,
        target: str = "loss",
        learning_rate: float | None = 1e-3,
        robustness: bool = False,
        regressor: str = "ridge",
        sampling: str = "adaptive",
        budget_seconds: float | None = None,
        curve_points: int = 0,
    ) -> None:
        if target not in ("headline", "loss"):
            raise AvatarError(f"indicator.target must be headline or loss, got {target!r}")
        if samples < 3:
            raise AvatarError(f"indicator.samples must be at least 3 to fit a surrogate, got {samples}")
        if sampling not in SAMPLINGS:
            raise AvatarError(f"indicator.sampling must be one of {', '.join(SAMPLINGS)}, got {sampling!r}")
        if budget_seconds is not None and not float(budget_seconds) > 0:
            raise AvatarError(f"indicator.budget_seconds must be a positive number of seconds or null, "
                              f"got {budget_seconds!r}")
        if int(curve_points) < 0 or int(curve_points) == 1:
            raise AvatarError(f"indicator.curve_points must be 0 (off) or at least 2, got {curve_points}")
        self.curve_points = int(curve_points)
        self.student_seconds: float | None = None  # the students' wall-clock budget (prepare sets it)
        self.regressor = check_regressor(regressor)
        self.sampling = sampling
        self.budget_seconds = None if budget_seconds is None else float(budget_seconds)
        self.samples = samples
        self.max_steps = max_steps
        self.train_examples = train_examples
        self.eval_examples = eval_examples
        self.seed = seed
        self.sample_pool = sample_pool
        self.target = target
        self.learning_rate = None if learning_rate is None else float(learning_rate)
        self.robustness = bool(robustness)
        self.passes = 1  # passes over a split smaller than train_examples (set by prepare)
        self.grouped = False  # the students' batches are grouped by length: so are the brief runs' (prepare)
        self.canonical = False  # the students read canonical names: so do the brief runs (prepare)
        self.hard_labels = False  # the teacher leaves its examples undecided: brief runs use hard labels
        self.flips_model: Any = None  # the fitted regression of the validation flip rate
        self.model: Any = None  # the fitted regression of the target
        self.runs: list[tuple[Candidate, dict[str, Any]]] = []  # the sampled candidates and their runs
        self.space: Space | None = None

    def trainer_options(self, context: MeterContext) -> dict[str, Any]:
        """The brief runs' Lightning budget over the machine's keys (accelerator ...): a budget in
        examples (one pass over ``train_examples``) costs every candidate the same data;
        ``max_steps``, when set, caps the steps instead; ``budget_seconds`` gives every
        candidate the same wall-clock time, so a fast candidate sees more data, as a student
        under ``trainer.max_time`` does."""
        eval_batches = math.ceil(self.eval_examples / 64) if self.eval_examples else None
        if self.budget_seconds:
            return {**context.trainer, "max_steps": -1, "max_epochs": -1,
                    "max_time": {"seconds": self.budget_seconds}, "limit_val_batches": eval_batches}
        return {
            **context.trainer,
            "max_steps": self.max_steps if self.max_steps else -1,
            "max_epochs": -1 if self.max_steps else self.passes,
            "limit_val_batches": eval_batches,
        }

    def passes_over(self, unlabeled: int) -> int:
        """Passes over an unlabeled split of ``unlabeled`` examples so each brief run sees
        ``train_examples`` of them. Why: on a small task one pass was 4 to 16 steps, every brief
        run stayed on its first plateau (all 20 collapsed on a 750-snippet task), and the
        effectiveness objective carried nothing; a large split is one pass, as before."""
        if self.max_steps or self.budget_seconds or not self.train_examples:
            return 1
        if unlabeled <= 0 or unlabeled >= self.train_examples:
            return 1
        return math.ceil(self.train_examples / unlabeled)

    # -- preparation: K brief distillations, then the fit
    def _budget(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "max_steps": self.max_steps,
            "train_examples": self.train_examples,
            "eval_examples": self.eval_examples,
            "seed": self.seed,
            **({"learning_rate": self.learning_rate} if self.learning_rate is not None else {}),
            **({"robustness": ROBUSTNESS_EXAMPLES} if self.robustness else {}),
            **({"passes": self.passes} if self.passes > 1 else {}),
            **({"labels": "hard"} if self.hard_labels else {}),
            **({"seconds": self.budget_seconds} if self.budget_seconds else {}),
            **({"sampling": self.sampling} if self.sampling != "adaptive" else {}),
            **({"curve_points": self.curve_points} if self.curve_points else {}),
            **({"group_by_length": True} if self.grouped else {}),
            **({"canonical_names": True} if self.canonical else {}),
        }

    @property
    def fixed_choices(self) -> dict[str, Any]:
        """The brief runs' own learning rate: the search holds the students at the rate measured."""
        return {"learning_rate": self.learning_rate} if self.learning_rate is not None else {}

    @property
    def fixed(self) -> frozenset[str]:
        """Dimensions the brief runs hold fixed, so the fit leaves them out."""
        return frozenset({"learning_rate"}) if self.learning_rate is not None else frozenset()

    def cache_key(self, task: Any, knowledge: Any, space: Space) -> str:
        """16 hex digits over what every cached run's score depends on.

        The teacher's knowledge (its identity and the unlabeled data's fingerprint), the
        validation data the score is measured on, the task's labels, headline metric and
        distillation temperature, the budget, the space's dimensions and the format.
        """
        source = json.dumps(
            [task.name, knowledge.teacher, knowledge.fingerprint, task.fingerprint("valid"),
             label_signature(task), task.headline_metric, float(task.temperature), self._budget(),
             space.names, SURROGATE_FORMAT],
            sort_keys=True,
        )
        return hashlib.sha256(source.encode()).hexdigest()[:16]

    def prepare(self, context: MeterContext) -> None:
        if context.task is None or context.pruner is None or context.cache_dir is None:
            raise AvatarError("the surrogate indicator needs the task, the pruner and the cache folder")
        task, pruner, cache_root = context.task, context.pruner, Path(context.cache_dir)
        self.space = context.space
        if self.curve_points and not context.student_seconds:
            raise AvatarError("indicator.curve_points extrapolates the brief runs to the students' budget, "
                              "which must then be a time: set trainer.max_time (e.g. 00:00:30:00)")
        self.student_seconds = context.student_seconds
        self.grouped = context.student_group_by_length
        self.canonical = context.student_canonical_names
        knowledge = context.teacher_knowledge()
        self.passes = self.passes_over(len(knowledge))
        self.hard_labels = undecided_teacher(knowledge, DistillSettings(fast=True))  # as the students
        if self.passes > 1:
            log.info("surrogate: %d unlabeled examples, so %d passes per brief run "
                     "(indicator.train_examples=%d)", len(knowledge), self.passes, self.train_examples)
        folder = cache_root / "surrogate" / f"{task.name}-{self.cache_key(task, knowledge, context.space)}"
        folder.mkdir(parents=True, exist_ok=True)
        runs_path = folder / "runs.jsonl"
        rng = random.Random(f"surrogate:{self.seed}")
        genomes = (pruner.latin_hypercube(self.samples, rng) if self.sampling == "lhs"
                   else pruner.sample(self.samples, rng, pool=self.sample_pool))
        candidates = [context.space.candidate(g) for g in genomes]
        flips = ROBUSTNESS_EXAMPLES if self.robustness and supports(task) else 0
        if self.robustness and not flips:
            raise AvatarError(f"indicator.robustness: task {task.name!r} is in {task.language}, which the "
                              "metamorphic transforms do not parse; set indicator.robustness=false")
        if flips:  # the driver writes the copy once; the brief runs (maybe Ray workers) read it
            metamorphic_copy(task, "valid", cache_root, "rename", seed=0)
        if self.canonical:  # likewise the canonical form of what the brief runs read
            for split in ("unlabel_train", "valid"):
                canonical_split(task, split, cache_root)
        settings = DistillSettings(fast=True, seed=self.seed,
                                   max_train_examples=None if self.budget_seconds else self.train_examples,
                                   validation_flips=flips, group_by_length=self.grouped,
                                   canonical_names=self.canonical)
        executor = context.executor or LocalExecutor()
        with cache_lock(runs_path):  # a concurrent search on the same task waits, then reuses these runs
            done = _read_runs(runs_path)
            todo = [c for c in candidates if c.key() not in done]
            if todo:
                log.info("surrogate: distilling %d of %d sampled candidates (%d cached) on %s -> %s",
                         len(todo), len(candidates), len(candidates) - len(todo), executor.describe(), folder)
            # the driver trains (or loads) the tokenizers: workers get them in the unit, write nothing
            options = self.trainer_options(context)
            units = [
                BriefRun(c, settings, options, build_tokenizer(c, task, cache_root, self.canonical),
                         self.learning_rate,
                         str(cache_root), self.curve_points, options["limit_val_batches"],
                         self.budget_seconds)
                for c in todo
            ]
            started = time.perf_counter()
            with progress_bar("surrogate (brief distillations)", len(candidates)) as update:
                update(len(candidates) - len(todo))
                finished = len(candidates) - len(todo)
                shared = {"task": task, "knowledge": knowledge}
                costs = [training_cost(c, task.num_labels) for c in todo]
                for _, record in executor.map(brief_run, units, shared, costs):
                    append_jsonl(runs_path, record)  # recorded at once: a killed driver keeps it
                    done[record["key"]] = record
                    finished += 1
                    update(finished)
                    if finished == len(candidates) - len(todo) + 1 and len(todo) > 1:
                        remaining = record["seconds"] * (len(todo) - 1) / 60 / executor.workers
                        log.info("surrogate: the first brief run took %.0f s; %d more need about %.0f min",
                                 record["seconds"], len(todo) - 1, remaining)
            if todo:
                log.info("surrogate: %d brief runs in %.0f s on %s", len(todo), time.perf_counter() - started,
                         executor.describe())

        self.runs = [(c, done[c.key()]) for c in candidates]
        features, targets = self.fit_runs()
        if self.robustness:
            rates = np.array([float(done[c.key()]["val_flip_rate"]) for c in candidates])
            self.flips_model = fit_regressor(self.regressor, features, rates, self.seed)
            loo_rates = leave_one_out_error(self.regressor, features, rates, self.seed)
            log.info("surrogate: validation flip rate from %d runs, leave-one-out MAE %.4f; the mean of the "
                     "other runs: %.4f (mean %.4f)", len(candidates), loo_rates, mean_predictor_error(rates),
                     rates.mean())
        loo = leave_one_out_error(self.regressor, features, targets, self.seed)
        baseline = mean_predictor_error(targets)
        atomic_write_json(
            folder / "surrogate.json",
            {
                "task": task.name,
                "teacher": knowledge.teacher,
                "budget": self._budget(),
                "headline_metric": task.headline_metric,
                "target": self.target,
                "regressor": self.regressor,
                "fixed": sorted(self.fixed),
                **linear_summary(self.model),
                "loo_mae": loo,
                "mean_predictor_loo_mae": baseline,
                "metric_mean": float(targets.mean()),
                "metric_std": float(targets.std()),
                "runs": [done[c.key()] for c in candidates],
            },
        )
        if context.run_dir:
            summary = json.loads((folder / "surrogate.json").read_text())
            atomic_write_json(Path(context.run_dir) / "surrogate.json", summary)
        predicted = task.headline_metric if self.target == "headline" else "negated validation loss"
        log.info("surrogate (%s): %s from %d runs, leave-one-out MAE %.4f; predicting the mean of the "
                 "other runs: %.4f (mean %.4f, std %.4f)", self.regressor, predicted, len(candidates), loo,
                 baseline, targets.mean(), targets.std())
        if baseline > 0 and loo >= baseline:
            log.warning("surrogate: it predicts its runs no better than their mean (leave-one-out MAE "
                        "%.4f >= %.4f): the search's effectiveness objective carries little signal; more "
                        "or longer brief runs (indicator.samples, indicator.train_examples) give it more",
                        loo, baseline)

    def _target(self, run: dict[str, Any]) -> float:
        """What the surrogate learns: the headline metric (the paper's), or the negated
        validation loss, a continuous signal where brief runs collapse to one class. With
        ``curve_points``, the run's learning curve read at the examples the candidate would see
        in the students' budget at the run's measured throughput."""
        if self.curve_points:
            if not run.get("curve") or not run.get("examples_per_s") or not self.student_seconds:
                raise AvatarError("indicator.curve_points needs runs that recorded their curve; clear the "
                                  "surrogate cache")
            examples = float(run["examples_per_s"]) * self.student_seconds
            if self.target == "headline":
                return extrapolate(run["curve"], examples, "val_accuracy")
            return -extrapolate(run["curve"], examples, "val_loss")
        if self.target == "headline":
            return float(run["metric"])
        if run.get("val_loss") is None:
            raise AvatarError(
                "indicator.target=loss needs runs that recorded val_loss; clear the surrogate cache"
            )
        return -float(run["val_loss"])

    def fit_runs(self) -> tuple[np.ndarray, np.ndarray]:
        """Fit the regression to the prepared runs' targets; (features, targets). Separate from
        ``prepare`` so a bench can read the same runs another way (``curve_points`` off)."""
        if self.space is None:
            raise AvatarError("the surrogate indicator was not prepared (call prepare first)")
        features = np.array([encode(self.space, c, self.fixed) for c, _ in self.runs])
        targets = np.array([self._target(run) for _, run in self.runs], dtype=float)
        self.model = fit_regressor(self.regressor, features, targets, self.seed)
        return features, targets

    @property
    def extra_objectives(self) -> list[tuple[str, Direction]]:
        """With ``robustness``: the predicted validation flip rate, to minimise."""
        return [(PREDICTED_FLIP_RATE, "min")] if self.robustness else []

    def predict_extra(self, candidate: Candidate, context: MeterContext) -> dict[str, float]:
        if not self.robustness:
            return {}
        if self.flips_model is None or self.space is None:
            raise AvatarError("the surrogate indicator was not prepared (call prepare first)")
        rate = float(self.flips_model.predict(np.array([encode(self.space, candidate, self.fixed)]))[0])
        return {PREDICTED_FLIP_RATE: min(1.0, max(0.0, rate))}

    def predict(self, candidate: Candidate, context: MeterContext) -> float:
        if self.model is None or self.space is None:
            raise AvatarError("the surrogate indicator was not prepared (call prepare first)")
        return float(self.model.predict(np.array([encode(self.space, candidate, self.fixed)]))[0])
