"""Classify code with a distilled student, through PyTorch or ONNX Runtime (float or int8).

All three backends share one tokenisation path: the student's ``tokenizer.json`` driven by
the ``tokenizers`` library directly. That keeps the inputs byte-identical across backends
(so their outputs can be compared), and it lets the ONNX backends run without importing
transformers or torch, which is the point of exporting.

Code is whitespace-normalised (``" ".join(code.split())``) because the students' tokenizers
were trained on code normalised that way; a pair is encoded as a text pair.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avatar.core.errors import AvatarError
from avatar.core.io import first_line
from avatar.core.text import has_code, normalize_code
from avatar.distill.folder import (
    StudentMeta,
    check_student_dir,
    load_classifier,
    onnx_file,
    read_student_meta,
)
from avatar.report.inputs import Snippet

BACKENDS = ("torch", "onnx", "int8")
BATCHES_PER_CHUNK = 4
"""Streamed inputs (``avatar predict``, ``avatar scan``) are predicted, and written, in chunks of
this many batches: sorting a chunk by length pads little, and a chunk is small enough that the
output keeps up with the input."""
LogitsFn = Callable[[dict[str, np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class PredictionResult:
    label: int
    probabilities: list[float]


def _load_tokenizer(folder: Path, meta: StudentMeta):  # noqa: ANN202 - tokenizers.Tokenizer
    """The student's fast tokenizer, truncating to max_length and padding with the model's pad id.

    The pad id comes from the model config, not the tokenizer: RoBERTa derives position ids
    from ``input_ids != pad_token_id``, so padding with any other id would shift positions.
    """
    from tokenizers import Tokenizer

    path = folder / "tokenizer.json"
    if not path.is_file():
        raise AvatarError(f"no tokenizer.json in {folder} (save the student's PreTrainedTokenizerFast there)")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as error:  # noqa: BLE001 - tokenizers raises a bare Exception on bad JSON
        reason = first_line(error)
        raise AvatarError(f"{path}: not a readable tokenizer ({reason}); copy the student again") from None
    tokenizer.enable_truncation(max_length=meta.max_length, strategy="longest_first")
    pad_token = tokenizer.id_to_token(meta.pad_token_id) or "<pad>"
    tokenizer.enable_padding(pad_id=meta.pad_token_id, pad_token=pad_token)
    return tokenizer


def _torch_logits(folder: Path, meta: StudentMeta) -> LogitsFn:
    import torch

    # sdpa only falls back to eager (with a warning) for relative positions: ask for eager directly.
    attn = "sdpa" if meta.position_embedding_type == "absolute" else "eager"
    model = load_classifier(folder, attn_implementation=attn).eval()

    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        with torch.inference_mode():
            inputs = {name: torch.from_numpy(array) for name, array in feeds.items()}
            return model(**inputs).logits.float().numpy()

    return run


def _onnx_logits(path: Path) -> LogitsFn:
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - onnxruntime raises its own InvalidProtobuf, Fail...
        raise AvatarError(
            f"{path}: not a loadable ONNX model ({first_line(error)}); run `avatar export "
            f"{path.parent}` again"
        ) from None
    wanted = [inp.name for inp in session.get_inputs()]

    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        missing = [name for name in wanted if name not in feeds]
        if missing:
            raise AvatarError(f"{path} expects inputs {missing} that avatar.report.predict does not produce")
        return session.run(["logits"], {name: feeds[name] for name in wanted})[0]

    return run


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def _check_snippets(codes: Sequence[Snippet], is_pair: bool) -> list[str | tuple[str, str]]:
    """Normalised inputs, all singles or all pairs; a pair student refuses single snippets."""
    items: list[str | tuple[str, str]] = []
    pairs = 0
    for number, code in enumerate(codes, start=1):
        if isinstance(code, str):
            items.append(normalize_code(code))
        elif isinstance(code, tuple | list) and len(code) == 2 and all(isinstance(c, str) for c in code):
            items.append((normalize_code(code[0]), normalize_code(code[1])))
            pairs += 1
        else:
            raise AvatarError(f"expected a code string or a (code, code) pair, got {type(code).__name__}")
        if not all(map(has_code, items[-1] if isinstance(items[-1], tuple) else (items[-1],))):
            raise AvatarError(f"snippet {number} is empty: there is no code to classify")
    if pairs not in (0, len(items)):
        raise AvatarError("mixed single snippets and pairs in one call")
    if is_pair and items and pairs == 0:
        raise AvatarError("this student classifies pairs of snippets: pass (code1, code2) tuples")
    return items


def canonical_inputs(items: list[str | tuple[str, str]], language: str | None) -> list[str | tuple[str, str]]:
    """Snippets with canonical names, for a student trained on them (``distill.canonical_names``)."""
    if language is None:
        raise AvatarError("this student reads canonical names but its avatar.json names no language")
    from avatar.code.metamorphic import canonical_codes

    return canonical_codes(items, language)  # type: ignore[arg-type, return-value]


class Predictor:
    """A loaded student: ``predict`` turns code (or pairs) into labels and probabilities."""

    def __init__(self, tokenizer: Any, meta: StudentMeta, run_logits: LogitsFn, backend: str) -> None:
        self.tokenizer = tokenizer
        self.meta = meta
        self._run_logits = run_logits
        self.backend = backend

    @classmethod
    def load(cls, student_dir: str | os.PathLike[str], backend: str = "torch") -> Predictor:
        if backend not in BACKENDS:
            raise AvatarError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        folder = check_student_dir(student_dir)
        meta = read_student_meta(folder)
        tokenizer = _load_tokenizer(folder, meta)
        if backend == "torch":
            run = _torch_logits(folder, meta)
        else:
            path = onnx_file(folder, quantized=backend == "int8")
            if not path.is_file():
                hint = "" if backend == "onnx" else " (without --no-int8)"
                raise AvatarError(f"missing {path}: run `avatar export {folder}`{hint} first")
            run = _onnx_logits(path)
        return cls(tokenizer, meta, run, backend)

    @property
    def is_pair(self) -> bool:
        return self.meta.is_pair

    def label_name(self, label: int) -> str:
        return self.meta.labels[label] if 0 <= label < len(self.meta.labels) else str(label)

    def encode(self, items: list[str | tuple[str, str]]) -> dict[str, np.ndarray]:
        """int64 ``input_ids`` and ``attention_mask``, padded to the longest item of the batch."""
        encodings = self.tokenizer.encode_batch(items)
        return {
            "input_ids": np.asarray([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.asarray([e.attention_mask for e in encodings], dtype=np.int64),
        }

    def logits(self, codes: Sequence[Snippet], batch_size: int = 32) -> np.ndarray:
        """Raw logits in input order, shape (len(codes), num_labels).

        Batches are formed over inputs sorted by length, so short snippets are not padded
        to the length of a long neighbour; the order is restored afterwards.
        """
        if batch_size < 1:
            raise AvatarError(f"batch_size must be at least 1, got {batch_size}")
        items = _check_snippets(codes, self.meta.is_pair)
        if self.meta.canonical_names:  # what it was trained to read: every name in canonical form
            items = canonical_inputs(items, self.meta.language)
        if not items:
            return np.zeros((0, len(self.meta.labels)), dtype=np.float32)
        order = sorted(range(len(items)), key=lambda i: len(items[i]) if isinstance(items[i], str)
                       else len(items[i][0]) + len(items[i][1]))
        chunks: list[np.ndarray] = []
        for start in range(0, len(order), batch_size):
            batch = [items[i] for i in order[start:start + batch_size]]
            chunks.append(np.asarray(self._run_logits(self.encode(batch)), dtype=np.float32))
        out = np.empty((len(items), chunks[0].shape[-1]), dtype=np.float32)
        out[order] = np.concatenate(chunks)
        return out

    def predict(self, codes: Sequence[Snippet], batch_size: int = 32) -> list[PredictionResult]:
        logits = self.logits(codes, batch_size)
        probabilities = _softmax(logits)
        return [PredictionResult(label=int(np.argmax(row)), probabilities=[float(p) for p in probs])
                for row, probs in zip(logits, probabilities)]
