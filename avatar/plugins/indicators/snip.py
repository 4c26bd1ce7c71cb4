"""A zero-cost proxy: SNIP saliency of the untrained student on one batch of the teacher's knowledge.

Why: the issue asked for at least one indicator that trains nothing, measured beside the
brief runs. SNIP (Lee et al., 2019; the strongest simple proxy in Abdelfattah et al.,
2021) scores a network at initialisation by how much the distillation loss on real data
would move if each weight were removed: the sum over weights of |w * dL/dw|. It costs one
forward and backward pass per candidate (and the candidate's tokenizer, trained once per
kind and vocabulary and cached as the students' are), so a search can afford it for every
candidate it visits. Whether it ranks students the way their accuracy after 30 minutes
does is what ``bench/indicator_eval.py`` measures; it is not the default.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avatar.core.errors import AvatarError
from avatar.core.registry import INDICATORS
from avatar.distill.student import (
    EncodedSplit,
    build_model,
    build_tokenizer,
    default_cache_dir,
)
from avatar.run.executor import torch_threads
from avatar.search.objectives import EffectivenessIndicator, MeterContext
from avatar.search.space import Candidate


@INDICATORS.register("snip")
class SnipIndicator(EffectivenessIndicator):
    """``log10`` of the SNIP saliency (higher: predicted more effective)."""

    needs_knowledge = True

    def __init__(self, examples: int = 64, seed: int = 0, threads: int = 1) -> None:
        if examples < 2:
            raise AvatarError(f"indicator.examples must be at least 2, got {examples}")
        self.examples = int(examples)
        self.seed = int(seed)
        self.threads = int(threads)
        self.texts: list[Any] = []
        self.targets: torch.Tensor | None = None
        self.soft = True
        self.temperature = 2.0
        self.task: Any = None
        self.cache_dir: Path | None = None
        self.scores: dict[str, float] = {}  # by architecture and tokenizer: the recipe does not change it

    def prepare(self, context: MeterContext) -> None:
        if context.task is None:
            raise AvatarError("the snip indicator needs the task")
        knowledge = context.teacher_knowledge()
        examples = context.task.read_split("unlabel_train")
        rows = np.random.default_rng(self.seed).permutation(len(examples))[: self.examples]
        self.texts = [examples[i].text for i in rows]
        self.soft = knowledge.logits is not None
        values = knowledge.logits if self.soft else knowledge.labels()
        self.targets = torch.from_numpy(np.array(values, copy=True)[rows])
        self.temperature = float(context.task.temperature)
        self.task = context.task
        self.cache_dir = Path(context.cache_dir) if context.cache_dir else default_cache_dir()

    def _loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if not self.soft:
            return torch.nn.functional.cross_entropy(logits, targets.long())
        t = self.temperature
        teacher = torch.softmax(targets.float() / t, dim=-1)
        return torch.nn.functional.kl_div(torch.log_softmax(logits / t, dim=-1), teacher,
                                          reduction="batchmean") * t * t

    def saliency(self, candidate: Candidate) -> float:
        """Sum of |w * dL/dw| over the untrained student's weights, on the prepared batch."""
        if self.targets is None or self.task is None or self.cache_dir is None:
            raise AvatarError("the snip indicator was not prepared (call prepare first)")
        tokenizer = build_tokenizer(candidate, self.task, self.cache_dir)
        split = EncodedSplit(list(self.texts), self.targets, tokenizer, int(candidate["max_sequence_length"]))
        batch = split.collate(list(range(len(split))))
        with torch_threads(self.threads):
            torch.manual_seed(self.seed)
            model = build_model(candidate, self.task.num_labels)
            model.train(False)  # dropout off: the score of the weights, not of one dropout mask
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            self._loss(logits, batch["targets"]).backward()
            grads = [(p.detach(), p.grad) for p in model.parameters() if p.grad is not None]
            return sum(float((weight * grad).abs().sum()) for weight, grad in grads)

    def predict(self, candidate: Candidate, context: MeterContext) -> float:
        key = f"{candidate.architecture_key()},tokenizer={candidate['tokenizer']}"
        if key not in self.scores:
            self.scores[key] = math.log10(max(self.saliency(candidate), 1e-30))
        return self.scores[key]
