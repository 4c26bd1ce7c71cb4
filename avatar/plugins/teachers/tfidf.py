"""The ``tfidf`` teacher: TF-IDF + logistic regression fitted on the labeled half, offline, in seconds.

Why: a teacher that needs no GPU, no network and no model folder, fitted in seconds (the
demo) to a minute (45,051 BigCloneBench pairs), so a search can start on any laptop; and
the classical reference a neural teacher must beat (docs/benchmarks.md, "Classical baseline").
It learns from the gold labels of ``label_train`` only, and gives soft labels on
``unlabel_train``: the regression's logits (softmax gives its probabilities), so students
distil with KL at a temperature as from any logits teacher. The classifier, its tokens and
its pair features are ``avatar.teach.tfidf``'s (shared with the report's baseline row).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from avatar.core.registry import TEACHERS
from avatar.task.base import Task
from avatar.teach.teacher import Knowledge, Teacher, TeacherContext, gold_labels
from avatar.teach.tfidf import DEFAULT_PAIR_FEATURES, TfidfOptions, fit_on_labeled_half, labeled_half

log = logging.getLogger("avatar")

FORMAT = 1  # bump when what ``produce`` computes changes for the same options and data


@TEACHERS.register("tfidf")
class TfidfTeacher(Teacher):
    """TF-IDF over code tokens + logistic regression; options as ``TfidfOptions`` (one-line errors)."""

    model_name = "TF-IDF + LR"

    def __init__(self, max_features: int = 20_000, ngram_range: Any = (1, 2), C: float = 1.0,  # noqa: N803
                 seed: int = 42, pair_features: Any = DEFAULT_PAIR_FEATURES) -> None:
        self.options = TfidfOptions.create(max_features=max_features, ngram_range=ngram_range, C=C, seed=seed,
                                           pair_features=pair_features)

    def identity(self) -> str:
        return f"tfidf {self.options.describe()}"

    def cache_identity(self, task: Task, context: TeacherContext) -> str:
        """The options plus the labeled half it learns from (the unlabeled half is in the cache key)."""
        extra = {"label_train": task.fingerprint("label_train"), "is_pair": task.is_pair, "format": FORMAT}
        return f"{self.identity()} {json.dumps(extra, sort_keys=True)}"

    def check_ready(self, task: Task, context: TeacherContext) -> None:
        """A task without labeled examples fails here, before the pruning and the search."""
        labeled_half(task)

    def produce(self, task: Task, context: TeacherContext) -> Knowledge:
        model = fit_on_labeled_half(task, self.options)
        unlabeled = [example.code for example in task.read_split("unlabel_train")]
        logits = model.logits(unlabeled)
        return Knowledge(task.name, self.identity(), "", logits=logits, gold=gold_labels(task))
