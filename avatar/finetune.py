"""Fine-tuning and running a Hugging Face sequence classifier with Lightning (the teacher's engine).

Why Lightning: the same code runs on a laptop CPU and on a GPU server (``trainer.accelerator``,
``trainer.precision``, ``trainer.devices`` come from the config), with early stopping and
best-checkpoint selection for free. The pieces:

* ``encode_examples``: examples -> features, either plain token ids (a pair is one sequence
  pair, ``<s> A </s></s> B </s>``) or GraphCodeBERT's data-flow inputs (``avatar.dataflow``);
* ``collate``: pads a batch to its longest member (data-flow inputs are trimmed to theirs);
* ``SequenceClassifier``: the LightningModule (AdamW, optional linear warm-up and decay,
  validation metrics from ``task.metrics()``);
* ``fit_classifier`` and ``predict_logits``: the two things a teacher does.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torchmetrics
from torch.utils.data import DataLoader

from avatar.dataflow import graph_guided_forward, graph_inputs
from avatar.errors import AvatarError
from avatar.task import Example

Feature = dict[str, torch.Tensor]

# Lightning's advice for tiny in-memory datasets (more workers, more batches) is noise here.
warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
warnings.filterwarnings("ignore", message=r".*log_every_n_steps.*")


class _NoAdverts(logging.Filter):
    """Drops Lightning's product tips (``litlogger``) from the run log; keeps everything else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_NoAdverts())


def normalize_whitespace(code: str) -> str:
    """``" ".join(code.split())``: what CodeXGLUE's fine-tuning scripts feed CodeBERT."""
    return " ".join(code.split())


def encode_examples(
    tokenizer: Any,
    examples: Sequence[Example],
    max_length: int,
    labels: Sequence[int] | None = None,
    data_flow: bool = False,
    language: str = "c",
    data_flow_length: int = 64,
) -> list[Feature]:
    """One feature dict per example (``labels`` aligned with ``examples``, or None to predict).

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
        firsts = [normalize_whitespace(e.code if isinstance(e.code, str) else e.code[0]) for e in examples]
        pairs = [e for e in examples if not isinstance(e.code, str)]
        seconds = [normalize_whitespace(e.code[1]) for e in pairs] if pairs else None
        if pairs and len(pairs) != len(examples):
            raise AvatarError("a split mixes single snippets and pairs")
        encoded = tokenizer(firsts, seconds, truncation=True, max_length=max_length)
        features = [{"input_ids": torch.tensor(ids, dtype=torch.long)} for ids in encoded["input_ids"]]
    if labels is not None:
        for feature, label in zip(features, labels, strict=True):
            feature["labels"] = torch.tensor(int(label), dtype=torch.long)
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
    from avatar.progress import progress_bar

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
        if "labels" in features[0]:
            batch["labels"] = torch.stack([f["labels"] for f in features])
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


class SequenceClassifier(L.LightningModule):
    """A ``*ForSequenceClassification`` model trained with cross-entropy (the model's own loss)."""

    def __init__(
        self,
        model: Any,
        metrics: torchmetrics.MetricCollection,
        lr: float = 2e-5,
        weight_decay: float = 0.0,
        warmup_ratio: float = 0.0,
        scheduler: str = "linear",
    ) -> None:
        super().__init__()
        if scheduler not in ("linear", "constant"):
            raise AvatarError(f"teacher.scheduler must be linear or constant, got {scheduler!r}")
        self.model = model
        self.valid_metrics = metrics.clone(prefix="valid/")
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.scheduler_name = scheduler

    def forward(self, batch: Feature) -> Any:
        labels = batch.get("labels")
        if "position_idx" in batch:
            return graph_guided_forward(
                self.model, batch["input_ids"], batch["position_idx"], batch["attn_mask"], labels=labels
            )
        return self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels)

    def training_step(self, batch: Feature, batch_idx: int) -> torch.Tensor:
        loss = self(batch).loss
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["input_ids"]))
        return loss

    def validation_step(self, batch: Feature, batch_idx: int) -> None:
        output = self(batch)
        self.valid_metrics.update(output.logits.argmax(dim=-1), batch["labels"])
        self.log("valid/loss", output.loss, batch_size=len(batch["input_ids"]))

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.valid_metrics.compute(), prog_bar=True)
        self.valid_metrics.reset()

    def predict_step(self, batch: Feature, batch_idx: int) -> torch.Tensor:
        batch = {k: v for k, v in batch.items() if k != "labels"}
        return self(batch).logits.float().cpu()

    def configure_optimizers(self) -> Any:
        # No weight decay on biases and LayerNorm weights, as BERT-style fine-tuning does.
        decay, no_decay = [], []
        for parameter in self.model.parameters():
            if parameter.requires_grad:
                (no_decay if parameter.ndim < 2 else decay).append(parameter)
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": self.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=self.lr,
        )
        total = self.trainer.estimated_stepping_batches
        if self.scheduler_name == "constant" and self.warmup_ratio == 0:
            return optimizer
        if not math.isfinite(total) or total <= 0:
            return optimizer  # no finite budget to decay over
        warmup = int(self.warmup_ratio * total)
        decays = self.scheduler_name == "linear"

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / (warmup + 1)
            if not decays:
                return 1.0
            return max(0.0, (total - step) / max(1.0, total - warmup))

        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def _loader(features: list[Feature], batch_size: int, pad_id: int, shuffle: bool, seed: int) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        features,  # type: ignore[arg-type]
        batch_size=batch_size,
        shuffle=shuffle,
        collate_fn=Collator(pad_id),
        generator=generator if shuffle else None,
    )


def _trainer(trainer_cfg: dict[str, Any], run_dir: Path, **overrides: Any) -> L.Trainer:
    """A ``lightning.Trainer`` from the config's options; ours only fill what the user left unset."""
    options: dict[str, Any] = {
        "default_root_dir": str(run_dir),
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
    }
    options.update(trainer_cfg)
    options.update(overrides)
    return L.Trainer(**options)


def fit_classifier(
    module: SequenceClassifier,
    train: list[Feature],
    valid: list[Feature],
    *,
    pad_id: int,
    batch_size: int,
    headline_metric: str,
    trainer_cfg: dict[str, Any],
    run_dir: Path,
    patience: int = 2,
    seed: int = 42,
) -> dict[str, float]:
    """Fine-tune in place; the module ends with the best validation checkpoint's weights.

    Early stopping and checkpointing watch ``valid/<headline_metric>`` (higher is better).
    The checkpoint folder is deleted afterwards: the caller saves the model where it belongs.
    Returns the best validation score (``{}`` when validation never ran).
    """
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    monitor = f"valid/{headline_metric}"
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoints = Path(tempfile.mkdtemp(dir=run_dir, prefix="teacher_checkpoints-"))  # one per fit
    checkpoint = ModelCheckpoint(
        dirpath=checkpoints, filename="best", monitor=monitor, mode="max", save_top_k=1,
        save_weights_only=True, auto_insert_metric_name=False,
    )
    callbacks: list[Any] = [checkpoint]
    if valid and patience > 0:
        callbacks.append(EarlyStopping(monitor=monitor, mode="max", patience=patience, strict=False))
    trainer = _trainer(
        trainer_cfg, run_dir, callbacks=callbacks, enable_checkpointing=True,
        logger=CSVLogger(str(run_dir), name="teacher_logs"),
    )
    module.train()  # from_pretrained returns the model in eval mode: dropout would stay off
    trainer.fit(
        module,
        train_dataloaders=_loader(train, batch_size, pad_id, shuffle=True, seed=seed),
        val_dataloaders=_loader(valid, batch_size, pad_id, shuffle=False, seed=seed) if valid else None,
    )
    best: dict[str, float] = {}
    if checkpoint.best_model_path:
        state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)
        module.load_state_dict(state["state_dict"])
        if checkpoint.best_model_score is not None:
            best[monitor] = float(checkpoint.best_model_score)
    shutil.rmtree(checkpoints, ignore_errors=True)
    module.cpu()
    return best


def predict_logits(
    module: SequenceClassifier,
    features: list[Feature],
    *,
    pad_id: int,
    batch_size: int,
    trainer_cfg: dict[str, Any],
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
    trainer = _trainer(trainer_cfg, run_dir, logger=False, enable_checkpointing=False, inference_mode=True)
    outputs = trainer.predict(module, dataloaders=loader)
    sorted_logits = torch.cat(list(outputs or []), dim=0)
    logits = torch.empty_like(sorted_logits)
    logits[torch.tensor(order)] = sorted_logits
    module.cpu()
    return logits
