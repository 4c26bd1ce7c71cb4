"""A saved student's folder: the one place that knows its layout.

A student folder is a Hugging Face model folder (``config.json``, ``model.safetensors``,
``tokenizer.json`` ...: ``from_pretrained`` loads it with no Avatar code) plus
``avatar.json``, the metadata ``avatar.report.predict`` needs (task, pair or single input,
truncation length, label names, how it was distilled) and ``avatar scan`` reads (the code's
language). ``avatar.report.export`` adds ONNX files
under the names Hugging Face ``optimum`` uses (``model.onnx``, ``model_quantized.onnx``),
so tools that know optimum's layout find them.

No torch or transformers import at module level: the ONNX prediction path reads
metadata without them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avatar.core.errors import AvatarError, DataError
from avatar.core.io import atomic_directory, first_line, to_jsonable, umask
from avatar.distill.card import CARD_NAME, model_card

CONFIG_NAME = "config.json"
META_NAME = "avatar.json"
HOLDOUT_AGREEMENT = "holdout/teacher_agreement"
"""Key in ``avatar.json``'s metrics: agreement with the teacher on the ``distill.holdout`` examples."""
TOKENIZER_NAME = "tokenizer.json"
ONNX_NAME = "model.onnx"
QUANTIZED_NAME = "model_quantized.onnx"  # dynamic int8 weights (optimum's name)
WEIGHT_NAMES = ("model.safetensors", "pytorch_model.bin")


@dataclass(frozen=True)
class StudentMeta:
    """What a caller needs besides the weights: input shape, truncation and label names."""

    task: str | None
    is_pair: bool
    max_length: int
    labels: list[str]
    pad_token_id: int
    position_embedding_type: str
    language: str | None = None  # the task's code language (students saved before it was recorded: None)
    canonical_names: bool = False  # it reads code with canonical names (distill.canonical_names)


def check_student_dir(student_dir: str | os.PathLike[str]) -> Path:
    """The folder as a Path, or a one-line ``AvatarError`` saying why it is not a student."""
    folder = Path(student_dir)
    if not folder.is_dir():
        raise AvatarError(f"student folder not found: {folder}")
    if not (folder / CONFIG_NAME).is_file():
        raise AvatarError(f"not a student folder (no {CONFIG_NAME}): {folder}")
    return folder


def weights_file(folder: Path) -> Path | None:
    """The student's weights file (safetensors first), or None."""
    for name in WEIGHT_NAMES:
        if (folder / name).is_file():
            return folder / name
    return None


def load_classifier(folder: Path, attn_implementation: str | None = None) -> Any:
    """The student's ``AutoModelForSequenceClassification``, or one ``AvatarError`` naming the
    weights file when it is missing, cut short (a copy or a disk that filled up) or damaged.
    """
    import pickle

    from transformers import AutoModelForSequenceClassification as Classifier

    weights = weights_file(folder)
    if weights is None:
        raise AvatarError(f"no student weights ({' or '.join(WEIGHT_NAMES)}) in {folder}")
    options = {"attn_implementation": attn_implementation} if attn_implementation else {}
    try:
        return Classifier.from_pretrained(folder, **options)
    except Exception as error:  # noqa: BLE001 - safetensors, torch and transformers each raise their own
        if type(error).__name__ == "SafetensorError" or isinstance(error, EOFError | pickle.UnpicklingError):
            raise AvatarError(
                f"{weights}: cannot load the student's weights ({first_line(error)}); the file is damaged "
                "or incomplete: copy or distil the student again"
            ) from None
        raise AvatarError(f"cannot load the student in {folder}: {first_line(error)}") from None


def onnx_file(folder: str | os.PathLike[str], quantized: bool = False) -> Path:
    """Where ``avatar.report.export`` writes the float (or dynamic int8) ONNX model of a student."""
    return Path(folder) / (QUANTIZED_NAME if quantized else ONNX_NAME)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"cannot read {path}: {error}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object")
    return data


def _labels_from_config(config: dict[str, Any]) -> list[str]:
    id2label = config.get("id2label") or {}
    if id2label:
        return [str(id2label[key]) for key in sorted(id2label, key=int)]
    return [f"LABEL_{i}" for i in range(int(config.get("num_labels", 2)))]


def read_student_meta(student_dir: str | os.PathLike[str]) -> StudentMeta:
    """Metadata from ``avatar.json`` when present, else derived from the config and tokenizer.

    max_length is always capped at ``max_position_embeddings - 2``: RoBERTa positions start
    after the padding index, so longer inputs would index past the position table.
    """
    folder = check_student_dir(student_dir)
    config = _read_json(folder / CONFIG_NAME)
    cap = int(config.get("max_position_embeddings", 514)) - 2
    meta_path = folder / META_NAME
    meta = _read_json(meta_path) if meta_path.is_file() else {}
    if "max_length" in meta:
        max_length = int(meta["max_length"])
    else:
        tok_config_path = folder / "tokenizer_config.json"
        tok_config = _read_json(tok_config_path) if tok_config_path.is_file() else {}
        max_length = int(tok_config.get("model_max_length") or cap)
    pad = config.get("pad_token_id")
    return StudentMeta(
        task=meta.get("task"),
        is_pair=bool(meta.get("is_pair", False)),
        max_length=max(2, min(max_length, cap)),
        labels=[str(x) for x in meta["labels"]] if meta.get("labels") else _labels_from_config(config),
        pad_token_id=1 if pad is None else int(pad),
        position_embedding_type=str(config.get("position_embedding_type", "absolute")),
        language=str(meta["language"]) if meta.get("language") else None,
        canonical_names=bool(meta.get("canonical_names", False)),
    )


def check_student_fits(meta: StudentMeta, folder: str | os.PathLike[str], *, task: str | None = None,
                       is_pair: bool | None = None, num_labels: int | None = None,
                       labels_of: str = "the task") -> None:
    """One line, before any work, when a student was trained for another task or input kind.

    Why: a demo student measured on Devign, or a single-function student fed BigCloneBench
    pairs, still returns labels, and numbers that mean nothing pass silently otherwise.
    ``avatar.json`` records the task and whether the student reads pairs; a folder without
    it (a plain Hugging Face model) is only checked on its number of labels.
    """
    if task is not None and meta.task is not None and meta.task != task:
        raise AvatarError(f"student {folder} was trained for task {meta.task!r}, not {task!r}")
    if is_pair is not None and meta.task is not None and meta.is_pair != is_pair:
        kinds = {True: "pairs of functions", False: "single functions"}
        raise AvatarError(f"student {folder} reads {kinds[meta.is_pair]}; the input here is {kinds[is_pair]}")
    if num_labels is not None and len(meta.labels) != num_labels:
        raise AvatarError(f"student {folder} has {len(meta.labels)} labels; {labels_of} has {num_labels}")


def save_student(model: Any, tokenizer: Any, meta: Mapping[str, Any], target: str | os.PathLike[str]) -> Path:
    """``save_pretrained`` model and tokenizer plus ``avatar.json`` into ``target``, atomically.

    Everything is written to a temporary folder beside ``target`` and renamed into place;
    an older student there is moved aside first and deleted after, so a kill leaves either
    the old or the new folder whole (or a stray ``.student.*`` folder, never a half one).
    """
    target = Path(target)
    with atomic_directory(target) as tmp:
        model.to("cpu").save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / META_NAME).write_text(json.dumps(to_jsonable(dict(meta)), indent=2) + "\n", encoding="utf-8")
        (tmp / CARD_NAME).write_text(str(model_card(to_jsonable(dict(meta)))), encoding="utf-8")
        mode = 0o666 & ~umask()  # safetensors writes 0600: a student is meant to be shared
        for path in tmp.iterdir():
            path.chmod(mode)
    return target
