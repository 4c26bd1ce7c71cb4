"""Fine-tuning and running a Hugging Face sequence classifier with Lightning (the teacher's engine).

Why Lightning: the same code runs on a laptop CPU and on a GPU server (the teacher's
``trainer`` options), with early stopping, best-checkpoint selection and resumable
checkpoints for free. The loop is ``avatar.learn.classifier.ClassifierModule`` (the students'
too) and the Trainer comes from ``avatar.learn.training.build_trainer``. The pieces here:

* ``encode_examples``: examples -> features, either plain token ids (a pair is one sequence
  pair, ``<s> A </s></s> B </s>``) or GraphCodeBERT's data-flow inputs (``avatar.code.graphcodebert``);
* ``Collator``: pads a batch to its longest member (data-flow inputs are trimmed to theirs);
* ``fit_classifier`` and ``predict_logits``: the two things a teacher does.
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from avatar.code.graphcodebert import graph_inputs
from avatar.core.errors import AvatarError
from avatar.core.io import load_checkpoint
from avatar.core.text import normalize_code
from avatar.learn.classifier import SELECTION, ClassifierModule, headline_of
from avatar.learn.resumable import resumable_loader
from avatar.learn.training import (
    SINGLE_PROCESS,
    build_trainer,
    leave_unless_rank_zero,
    quiet_lightning,
    resume_checkpoint,
    with_min_steps,
)
from avatar.task.base import Example

log = logging.getLogger("avatar")

Feature = dict[str, torch.Tensor]


def encode_examples(
    tokenizer: Any,
    examples: Sequence[Example],
    max_length: int,
    labels: Sequence[int] | None = None,
    data_flow: bool = False,
    language: str = "c",
    data_flow_length: int = 64,
) -> list[Feature]:
    """One feature dict per example (``labels`` aligned with ``examples`` become ``targets``, or None).

    Plain: ``input_ids`` truncated to ``max_length`` (pairs: longest-first truncation).
    Data flow (single snippets only): ``graph_inputs`` with ``data_flow_length`` node slots and
    ``max_length - data_flow_length`` code positions (the code may use unused node slots).
    """
    if data_flow:
        if any(not isinstance(e.code, str) for e in examples):
            raise AvatarError("data-flow inputs are built for single-snippet tasks only")
        code_length = max_length - data_flow_length
        features = _graph_features(tokenizer, examples, language, code_length, data_flow_length)
    else:
        firsts = [normalize_code(e.code if isinstance(e.code, str) else e.code[0]) for e in examples]
        pairs = [e for e in examples if not isinstance(e.code, str)]
        seconds = [normalize_code(e.code[1]) for e in pairs] if pairs else None
        if pairs and len(pairs) != len(examples):
            raise AvatarError("a split mixes single snippets and pairs")
        encoded = tokenizer(firsts, seconds, truncation=True, max_length=max_length)
        features = [{"input_ids": torch.tensor(ids, dtype=torch.long)} for ids in encoded["input_ids"]]
    if labels is not None:
        for feature, label in zip(features, labels, strict=True):
            feature["targets"] = torch.tensor(int(label), dtype=torch.long)
    return features


def _graph_features(
    tokenizer: Any, examples: Sequence[Example], language: str, code_length: int, data_flow_length: int
) -> list[Feature]:
    """GraphCodeBERT inputs, stored compactly: cut to the real length, the mask as packed bits.

    Why packed: a full (512, 512) bool mask is 256 KB, 2.8 GB for Devign's 10,927 training
    functions; the bits of the real block are at most 32 KB. ``Collator`` unpacks per batch.
    Building the graphs costs tens of ms per function (parsing and data-flow analysis), so it
    is done once, with a progress bar, rather than in every epoch.
    """
    from avatar.core.progress import progress_bar

    features: list[Feature] = []
    with progress_bar("data-flow graphs", len(examples)) as update:
        for done, example in enumerate(examples, start=1):
            graph = graph_inputs(tokenizer, str(example.code), language, code_length, data_flow_length)
            n = int(graph["position_idx"].ne(1).sum())  # code, then nodes, then padding (position 1)
            bits = np.packbits(graph["attn_mask"][:n, :n].numpy().reshape(-1))
            features.append({
                "input_ids": graph["input_ids"][:n].clone(),
                "position_idx": graph["position_idx"][:n].clone(),
                "attn_bits": torch.from_numpy(bits),
            })
            if done % 64 == 0 or done == len(examples):
                update(done)
    return features


def feature_length(feature: Feature) -> int:
    """Real (unpadded) length: what batches are padded to and inference sorts by."""
    return len(feature["input_ids"])


class Collator:
    """Pads a batch to its longest feature (ids with ``pad_id``; data-flow masks unpacked)."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, features: list[Feature]) -> Feature:
        length = max(feature_length(f) for f in features)
        ids = torch.full((len(features), length), self.pad_id, dtype=torch.long)
        for row, feature in enumerate(features):
            ids[row, : feature_length(feature)] = feature["input_ids"]
        batch: Feature = {"input_ids": ids}
        if "attn_bits" in features[0]:
            batch["position_idx"], batch["attn_mask"] = self._graph(features, length)
        else:
            lengths = torch.tensor([feature_length(f) for f in features])
            batch["attention_mask"] = (torch.arange(length)[None, :] < lengths[:, None]).long()
        if "targets" in features[0]:
            batch["targets"] = torch.stack([f["targets"] for f in features])
        return batch

    @staticmethod
    def _graph(features: list[Feature], length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Padding as ``graph_inputs`` lays it out: position 1, attending only to itself."""
        positions = torch.ones((len(features), length), dtype=torch.long)
        mask = torch.zeros((len(features), length, length), dtype=torch.bool)
        for row, feature in enumerate(features):
            n = feature_length(feature)
            positions[row, :n] = feature["position_idx"]
            block = np.unpackbits(feature["attn_bits"].numpy(), count=n * n).reshape(n, n)
            mask[row, :n, :n] = torch.from_numpy(block.astype(bool))
        mask |= torch.eye(length, dtype=torch.bool)[None]
        return positions, mask


def _loader(features: list[Feature], batch_size: int, pad_id: int, shuffle: bool, seed: int) -> DataLoader:
    """Training: a shuffle a checkpoint carries (a resumed fine-tuning sees the batches it would have)."""
    if shuffle:
        return resumable_loader(features, batch_size, seed, collate_fn=Collator(pad_id))
    generator = torch.Generator().manual_seed(seed)  # workers' seeds: none drawn from dropout's generator
    return DataLoader(features, batch_size=batch_size, collate_fn=Collator(pad_id),  # type: ignore[arg-type]
                      generator=generator)


def fit_classifier(
    module: ClassifierModule,
    train: list[Feature],
    valid: list[Feature],
    *,
    pad_id: int,
    batch_size: int,
    trainer: dict[str, Any],
    run_dir: Path,
    checkpoint_dir: Path,
    patience: int = 2,
    seed: int = 42,
    checkpoint_every_minutes: float = 5.0,
) -> dict[str, float]:
    """Fine-tune in place; the module ends with the best validation checkpoint's weights.

    Early stopping and checkpointing watch ``val/selection``: the headline metric, with
    collapsed epochs ranked below every other (``avatar.learn.classifier.selection_score``).
    ``checkpoint_dir`` (one per teacher identity) gets ``last.ckpt`` every
    ``checkpoint_every_minutes`` of training: a killed fine-tune resumes from there. The
    folder is deleted once the fit ends; the caller saves the model where it belongs.
    Returns the best validation score (``{}`` when validation never ran).
    """
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    monitor = SELECTION
    run_dir.mkdir(parents=True, exist_ok=True)
    best_checkpoint = ModelCheckpoint(
        dirpath=checkpoint_dir, filename="best", monitor=monitor, mode="max", save_top_k=1,
        auto_insert_metric_name=False, enable_version_counter=False,
    )
    last_checkpoint = ModelCheckpoint(
        dirpath=checkpoint_dir, save_top_k=0, save_last=True, enable_version_counter=False,
        train_time_interval=timedelta(minutes=checkpoint_every_minutes),
    )
    callbacks: list[Any] = [best_checkpoint, last_checkpoint]
    if valid and patience > 0:
        callbacks.append(EarlyStopping(monitor=monitor, mode="max", patience=patience, strict=False))
    # Lightning stops at max_epochs even before min_steps: here min_steps raises the epochs instead
    steps_per_epoch = math.ceil(len(train) / batch_size)
    minimum = int(trainer.get("min_steps") or 0)
    trainer = with_min_steps(trainer, steps_per_epoch, minimum, "teacher.trainer.min_steps")
    fit = build_trainer(
        trainer, root_dir=run_dir, callbacks=callbacks, checkpointing=True,
        logger=CSVLogger(str(run_dir), name="teacher_logs"),
    )
    resume = resume_checkpoint(checkpoint_dir / "last.ckpt", trainer)
    if resume is not None:
        log.info("resuming the teacher's fine-tuning from %s", resume)
    module.train()  # from_pretrained returns the model in eval mode: dropout would stay off
    with quiet_lightning():
        fit.fit(
            module,
            train_dataloaders=_loader(train, batch_size, pad_id, shuffle=True, seed=seed),
            val_dataloaders=_loader(valid, batch_size, pad_id, shuffle=False, seed=seed) if valid else None,
            ckpt_path=resume,
            weights_only=True,  # a planted checkpoint must not run code
        )
    leave_unless_rank_zero(fit)
    best: dict[str, float] = {}
    best_path = best_checkpoint.best_model_path or (
        str(checkpoint_dir / "best.ckpt") if (checkpoint_dir / "best.ckpt").is_file() else ""
    )
    if best_path:
        module.load_state_dict(load_checkpoint(best_path)["state_dict"])
        if best_checkpoint.best_model_score is not None:
            headline, collapsed = headline_of(float(best_checkpoint.best_model_score))
            best[f"val/{module.headline}"] = headline
            if collapsed:
                log.warning("every validation of the fine-tune collapsed to one class; kept the best of them")
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    module.cpu()
    return best


def predict_logits(
    module: ClassifierModule,
    features: list[Feature],
    *,
    pad_id: int,
    batch_size: int,
    trainer: dict[str, Any],
    run_dir: Path,
) -> torch.Tensor:
    """Logits (N, labels) in the order of ``features``, under ``torch.inference_mode``.

    Batches are built from length-sorted features (far less padding) and the rows put back
    in the original order. Lightning's progress bar shows the batches.
    """
    if not features:
        raise AvatarError("nothing to predict: the unlabeled split is empty")
    order = sorted(range(len(features)), key=lambda i: feature_length(features[i]))
    loader = DataLoader(
        [features[i] for i in order],  # type: ignore[arg-type]
        batch_size=batch_size,
        shuffle=False,
        collate_fn=Collator(pad_id),
    )
    predictor = build_trainer({**trainer, **SINGLE_PROCESS}, root_dir=run_dir, inference_mode=True)
    with quiet_lightning():
        outputs = predictor.predict(module, dataloaders=loader)
    sorted_logits = torch.cat(list(outputs or []), dim=0)
    logits = torch.empty_like(sorted_logits)
    logits[torch.tensor(order)] = sorted_logits
    module.cpu()
    return logits
