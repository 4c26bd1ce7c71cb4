"""The ``huggingface`` teacher: fine-tune an encoder on the labeled half, predict the unlabeled half.

Any ``AutoModelForSequenceClassification`` checkpoint works (CodeBERT, GraphCodeBERT, a
local folder written by ``save_pretrained``). The fine-tuned model and its tokenizer are
saved under ``<cache>/teachers/<task>-<key>/`` (``key`` hashes everything that shapes the
model: the plugin's options, the trainer's budget, the labeled and validation data), so a
second run with the same identity skips fine-tuning and only predicts; the knowledge itself
is cached one level up by ``avatar.teach.teacher``.

Inputs: code is whitespace-normalised as in CodeXGLUE; a pair task (clone detection) is one
sequence pair ``tokenizer(code1, code2)`` with longest-first truncation to ``max_length``
(default: 512 for single snippets, 400 for pairs, or the task's ``teacher_max_length``).
``data_flow=true`` builds GraphCodeBERT's inputs (``avatar.code.dataflow``) for single-snippet
tasks: ``data_flow_length`` (default ``max_length // 5``) node slots, the rest code. For pair
tasks GraphCodeBERT encodes each function separately with its own graph and classifies the
two [CLS] vectors together, which a plain ``AutoModelForSequenceClassification`` cannot
express; pairs are therefore encoded as plain token pairs and a warning says so.

Offline: a hub id fails at once with one line that says to pass ``teacher.path=<local dir>``
(``HF_HUB_OFFLINE=1`` makes the lookup local-only; without it transformers tries the network).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from avatar.core.errors import AvatarError, DataError
from avatar.core.io import atomic_directory, atomic_write_json
from avatar.core.registry import TEACHERS
from avatar.task.base import Example, Task, label_names, label_signature
from avatar.teach.teacher import Knowledge, Teacher, TeacherContext, gold_labels, stable_key

log = logging.getLogger("avatar")

# Trainer options that change what the fine-tuned model becomes (part of its identity).
BUDGET_KEYS: tuple[str, ...] = (
    "max_epochs", "min_epochs", "max_steps", "min_steps", "max_time", "accumulate_grad_batches",
    "gradient_clip_val", "gradient_clip_algorithm", "precision", "devices", "num_nodes",
    "limit_train_batches", "limit_val_batches", "val_check_interval", "check_val_every_n_epoch",
)
MARKER = "avatar_teacher.json"  # written last into a finished model folder
MODEL_FORMAT = 2  # version of the cached fine-tuned teachers: bump when fine-tuning changes what it saves
PAIR_MAX_LENGTH = 400
SINGLE_MAX_LENGTH = 512


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def load_pretrained(path: str, num_labels: int, labels: list[str] | None = None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` from a local folder or a hub id; any failure is one ``AvatarError`` line.

    ``labels`` (the task's class names) become the config's ``id2label``/``label2id``, so a
    saved teacher names its classes as the task does (``avatar predict``, the report).
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    local = Path(path).expanduser()
    is_local = local.is_dir()
    if not is_local and (path.startswith((".", "/", "~")) or path.count("/") > 1):
        raise AvatarError(f"teacher.path {path}: no such folder (a saved model or a hub id like org/name)")
    offline = _hub_offline()
    source = str(local) if is_local else path
    names: dict[str, Any] = {}
    if labels is not None:
        names = {"id2label": dict(enumerate(labels)), "label2id": {name: i for i, name in enumerate(labels)}}
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=num_labels, local_files_only=offline or is_local, **names
        )
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=offline or is_local)
    except (OSError, ValueError) as error:  # huggingface_hub's errors derive from OSError/ValueError
        if is_local:
            reason = _first_line(error)
            raise AvatarError(f"teacher.path {local}: cannot load a model from it ({reason})") from None
        why = "the Hugging Face hub is offline (HF_HUB_OFFLINE=1)" if offline else _first_line(error)
        raise AvatarError(
            f"cannot load teacher {path!r}: {why}; pass teacher.path=<local dir> holding a saved model "
            "(save_pretrained) or run online once to fill the Hugging Face cache"
        ) from None
    if not getattr(tokenizer, "is_fast", False):
        log.warning("the tokenizer of teacher %s is not a fast tokenizer: encoding will be slow", path)
    return model, tokenizer


def _local_signature(path: str) -> list[tuple[str, int, int]] | None:
    """(name, size, mtime) of a local model folder's files: a re-saved model is a new identity."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        return None
    return sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file())


def training_label(example: Example, split: str) -> int:
    """The gold label, or the teacher label a dataset ships where gold is unknown."""
    label = example.label if example.label is not None else example.teacher_label
    if label is None:
        raise DataError(f"{split} example {example.id!r} has no gold or teacher label to fine-tune on")
    return int(label)


@TEACHERS.register("huggingface")
class HuggingFaceTeacher(Teacher):
    """Fine-tunes ``path`` (hub id or local dir) with Lightning, then predicts the unlabeled half's logits."""

    def __init__(
        self,
        path: str,
        data_flow: bool = False,
        lr: float = 2e-5,
        max_length: int | None = None,
        batch_size: int = 8,
        seed: int = 42,
        weight_decay: float = 0.0,
        warmup_ratio: float = 0.0,
        scheduler: str = "linear",
        patience: int = 2,
        data_flow_length: int | None = None,
        predict_batch_size: int | None = None,
    ) -> None:
        if not path:
            raise AvatarError("the huggingface teacher needs teacher.path=<hub id or local dir>")
        if batch_size < 1 or (max_length is not None and max_length < 8):
            raise AvatarError(
                f"teacher.batch_size must be >= 1 and max_length >= 8, got {batch_size}, {max_length}"
            )
        self.path = str(path)
        self.data_flow = bool(data_flow)
        self.lr = float(lr)
        self.max_length = max_length
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.weight_decay = float(weight_decay)
        self.warmup_ratio = float(warmup_ratio)
        self.scheduler = scheduler
        self.patience = int(patience)
        self.data_flow_length = data_flow_length
        self.predict_batch_size = predict_batch_size or 4 * self.batch_size

    # -- identity ------------------------------------------------------------------------

    def _options(self) -> dict[str, Any]:
        return {
            "path": self.path, "data_flow": self.data_flow, "lr": self.lr, "max_length": self.max_length,
            "batch_size": self.batch_size, "seed": self.seed, "weight_decay": self.weight_decay,
            "warmup_ratio": self.warmup_ratio, "scheduler": self.scheduler, "patience": self.patience,
            "data_flow_length": self.data_flow_length,
        }

    def identity(self) -> str:
        return "huggingface " + json.dumps(self._options(), sort_keys=True)

    def cache_identity(self, task: Task, context: TeacherContext) -> str:
        """Options, trainer budget, data, and what of the task shapes the model: its labels (the
        head's size and ``id2label``), the metric early stopping watches and the inputs."""
        budget = {k: context.trainer[k] for k in BUDGET_KEYS if k in context.trainer}
        data = {split: task.fingerprint(split) for split in ("label_train", "valid")}
        shape = {
            **label_signature(task), "headline_metric": task.headline_metric, "is_pair": task.is_pair,
            "max_length": self.resolved_max_length(task),
            "language": task.language if self.data_flow and not task.is_pair else None,
        }
        extra = {"trainer": budget, "data": data, "task": shape, "local_files": _local_signature(self.path),
                 "format": MODEL_FORMAT}
        return f"{self.identity()} {json.dumps(extra, sort_keys=True, default=str)}"

    def check_ready(self, task: Task, context: TeacherContext) -> None:
        """The model loads (its config, seconds): offline, a hub id fails here in one line,
        before the pruning and the search, unless the fine-tuned model is already cached."""
        if (self.model_dir(task, context) / MARKER).is_file():
            return
        from transformers import AutoConfig

        local = Path(self.path).expanduser()
        if local.is_dir():
            return
        try:
            AutoConfig.from_pretrained(self.path, local_files_only=_hub_offline())
        except (OSError, ValueError):
            load_pretrained(self.path, task.num_labels)  # raises the one-line hint

    # -- inputs --------------------------------------------------------------------------

    def resolved_max_length(self, task: Task) -> int:
        if self.max_length is not None:
            return int(self.max_length)
        default = PAIR_MAX_LENGTH if task.is_pair else SINGLE_MAX_LENGTH
        return int(getattr(task, "teacher_max_length", None) or default)

    def uses_data_flow(self, task: Task) -> bool:
        if self.data_flow and task.is_pair:
            log.warning(
                "teacher data_flow=true: data flow is used for single-snippet tasks only; the %s pairs are "
                "encoded as plain token pairs", task.name,
            )
            return False
        return self.data_flow

    def _encode(
        self, tokenizer: Any, task: Task, split: str, labelled: bool, flow: bool
    ) -> list[dict[str, Any]]:
        from avatar.teach.finetune import encode_examples

        examples = task.read_split(split)  # type: ignore[arg-type]
        max_length = self.resolved_max_length(task)
        flow_length = self.data_flow_length if self.data_flow_length is not None else max_length // 5
        if flow and not 0 <= flow_length <= max_length - 2:
            raise AvatarError(f"teacher.data_flow_length must be in 0..{max_length - 2}, got {flow_length}")
        labels = [training_label(e, split) for e in examples] if labelled else None
        return encode_examples(
            tokenizer, examples, max_length, labels=labels, data_flow=flow, language=task.language,
            data_flow_length=flow_length,
        )

    # -- the work ------------------------------------------------------------------------

    def model_dir(self, task: Task, context: TeacherContext) -> Path:
        """Where the fine-tuned model of this identity lives (or will)."""
        return self._model_dir(task, context, self.cache_identity(task, context))

    @staticmethod
    def _model_dir(task: Task, context: TeacherContext, identity: str) -> Path:
        return Path(context.cache_dir) / "teachers" / f"{task.name}-{stable_key(identity)}"

    def produce(self, task: Task, context: TeacherContext) -> Knowledge:
        import lightning as L

        from avatar.learn.classifier import ClassifierModule
        from avatar.teach.finetune import fit_classifier, predict_logits

        flow = self.uses_data_flow(task)
        identity = self.cache_identity(task, context)
        target = self._model_dir(task, context, identity)
        trainer = dict(context.trainer)
        context.run_dir.mkdir(parents=True, exist_ok=True)
        if (target / MARKER).is_file():
            log.info("fine-tuned teacher found in cache: %s (skipping fine-tuning)", target)
            model, tokenizer = load_pretrained(str(target), task.num_labels, label_names(task))
        else:
            model, tokenizer = load_pretrained(self.path, task.num_labels, label_names(task))
            L.seed_everything(self.seed, workers=True, verbose=False)
            train = self._encode(tokenizer, task, "label_train", True, flow)
            valid = self._encode(tokenizer, task, "valid", True, flow)
            module = ClassifierModule(
                model, task, learning_rate=self.lr, weight_decay=self.weight_decay,
                warmup_ratio=self.warmup_ratio, schedule=self.scheduler,
            )
            log.info("fine-tuning teacher %s on %d labeled examples (%d for validation)", self.path,
                     len(train), len(valid))
            best = fit_classifier(
                module, train, valid, pad_id=_pad_id(tokenizer), batch_size=self.batch_size,
                trainer=trainer, run_dir=context.run_dir, patience=self.patience, seed=self.seed,
                checkpoint_dir=context.cache_dir / "teacher_checkpoints" / target.name,
            )
            self._save(model, tokenizer, target, {"identity": identity, "best_validation": best})
        module = ClassifierModule(model, task, learning_rate=self.lr)
        unlabeled = self._encode(tokenizer, task, "unlabel_train", False, flow)
        logits = predict_logits(
            module, unlabeled, pad_id=_pad_id(tokenizer), batch_size=self.predict_batch_size,
            trainer=trainer, run_dir=context.run_dir,
        )
        return Knowledge(task.name, self.identity(), "", logits=logits.numpy(), gold=gold_labels(task))

    @staticmethod
    def _save(model: Any, tokenizer: Any, target: Path, info: dict[str, Any]) -> None:
        """``save_pretrained`` to a temporary sibling, then rename: a killed run leaves no half model."""
        with atomic_directory(target) as tmp:  # replaces an unfinished folder without the marker
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            atomic_write_json(tmp / MARKER, info)
        log.info("fine-tuned teacher saved to %s", target)


def _pad_id(tokenizer: Any) -> int:
    pad = getattr(tokenizer, "pad_token_id", None)
    if pad is None:
        raise AvatarError("the teacher's tokenizer has no padding token")
    return int(pad)
