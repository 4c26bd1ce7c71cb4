"""The ``scratch`` teacher: a small RoBERTa initialised here and trained on the labeled half.

Why: the demo (and any user without a GPU or network) needs a real teacher that exists
offline in seconds. It is the ``huggingface`` teacher in every other respect (Lightning
fine-tuning, early stopping, cached model and knowledge); only its starting point is a
freshly initialised model with its own BPE tokenizer trained on the task's labeled code,
saved once under ``<cache>/teachers/scratch-init-<task>-<key>/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from avatar.core.io import atomic_directory
from avatar.core.registry import TEACHERS
from avatar.plugins.teachers.huggingface import HuggingFaceTeacher
from avatar.task.base import Task, label_names, label_signature
from avatar.teach.teacher import Knowledge, TeacherContext, stable_key

SCRATCH = "scratch"
INIT_FORMAT = 2  # version of the initial folders: bump when ``_initialise`` changes what it saves


@TEACHERS.register("scratch")
class ScratchTeacher(HuggingFaceTeacher):
    def __init__(
        self,
        hidden_size: int = 64,
        num_hidden_layers: int = 2,
        num_attention_heads: int = 2,
        intermediate_size: int = 256,
        vocab_size: int = 2000,
        max_length: int = 256,
        lr: float = 1e-3,
        batch_size: int = 16,
        seed: int = 42,
        **options: Any,
    ) -> None:
        super().__init__(SCRATCH, max_length=max_length, lr=lr, batch_size=batch_size, seed=seed, **options)
        self.architecture = {
            "hidden_size": int(hidden_size),
            "num_hidden_layers": int(num_hidden_layers),
            "num_attention_heads": int(num_attention_heads),
            "intermediate_size": int(intermediate_size),
            "vocab_size": int(vocab_size),
        }

    def _options(self) -> dict[str, Any]:
        return {**super()._options(), "path": SCRATCH, "architecture": self.architecture}

    def cache_identity(self, task: Task, context: TeacherContext) -> str:
        # the initial folder is derived from this identity, so its files must not enter it
        saved, self.path = self.path, SCRATCH
        try:
            return super().cache_identity(task, context)
        finally:
            self.path = saved

    def check_ready(self, task: Task, context: TeacherContext) -> None:
        """Nothing to load: the model is initialised here."""

    def initial_dir(self, task: Task, context: TeacherContext) -> Path:
        """``<cache>/teachers/scratch-init-<task>-<key>``: the key holds everything the folder's
        weights and tokenizer depend on, the labels (the head's size, ``id2label``) included."""
        key = stable_key(self.architecture, self.resolved_max_length(task), self.seed,
                         task.fingerprint("label_train"), label_signature(task), INIT_FORMAT)
        return Path(context.cache_dir) / "teachers" / f"scratch-init-{task.name}-{key}"

    def produce(self, task: Task, context: TeacherContext) -> Knowledge:
        target = self.initial_dir(task, context)
        if not (target / "config.json").is_file():
            self._initialise(task, target)
        self.path = str(target)
        try:
            return super().produce(task, context)
        finally:
            self.path = SCRATCH

    def _initialise(self, task: Task, target: Path) -> None:
        import torch
        from transformers import RobertaConfig, RobertaForSequenceClassification

        from avatar.distill.tokenizer import train_tokenizer

        max_length = self.resolved_max_length(task)
        texts = task.texts("label_train")
        tokenizer = train_tokenizer("BPE", self.architecture["vocab_size"], texts, max_length)
        torch.manual_seed(self.seed)
        labels = label_names(task)
        config = RobertaConfig(
            **self.architecture,
            max_position_embeddings=max_length + 2,
            type_vocab_size=1,
            num_labels=task.num_labels,
            id2label=dict(enumerate(labels)),
            label2id={name: i for i, name in enumerate(labels)},
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
        )
        model = RobertaForSequenceClassification(config)
        with atomic_directory(target) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
