"""Export a distilled student to ONNX (and dynamic int8) for deployment without PyTorch.

A student folder is what ``save_pretrained`` wrote for a ``RobertaForSequenceClassification``
and its ``PreTrainedTokenizerFast`` (plus an optional ``avatar.json``). The ONNX graph takes
``input_ids`` and ``attention_mask`` (int64, dynamic batch and sequence) and returns
``logits``; tokenisation stays outside the graph (see ``avatar.report.predict``).

We use the legacy TorchScript exporter (``dynamo=False``): the dynamo exporter specialises
the sequence length of relative-position students, the legacy one keeps it dynamic.
Every file is written to a temporary name in the target directory and renamed over the
target, so an interrupted export never leaves a truncated model behind.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

from avatar.core.errors import AvatarError
from avatar.core.io import atomic_path
from avatar.distill.folder import (
    check_student_dir,
    check_student_fits,
    load_classifier,
    onnx_file,
    read_student_meta,
)

INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "logits"


class _DropPreprocessHint(logging.Filter):
    """onnxruntime logs a hint to run shape pre-processing; that step fails on relative-position
    graphs (incomplete symbolic shape inference) and is not needed for dynamic quantisation."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def _logits_only(model):  # noqa: ANN001, ANN202 - torch types imported lazily
    """Wrap a sequence classifier so the graph has two int64 inputs and one ``logits`` output."""
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, return_dict=True).logits

    return LogitsOnly(model)


def _dummy_inputs(config, batch: int = 2, length: int = 8):  # noqa: ANN001, ANN202
    """Trace inputs avoiding the pad id, with a padded tail in one row so masking is traced too."""
    import torch

    pad = config.pad_token_id if config.pad_token_id is not None else 1
    low = 5 if config.vocab_size > 6 else 0
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(low, config.vocab_size, (batch, length), dtype=torch.long, generator=generator)
    ids[ids == pad] = low if low != pad else low + 1
    mask = torch.ones(batch, length, dtype=torch.long)
    ids[-1, -2:] = pad
    mask[-1, -2:] = 0
    return ids, mask


def export_onnx(student_dir: str | os.PathLike[str], out_path: str | os.PathLike[str] | None = None,
                opset: int = 17) -> Path:
    """Export the student's classifier to ONNX; returns the written path (default ``<dir>/model.onnx``).

    Eager attention is forced: the sdpa path builds its masks with data-dependent Python
    branches that tracing would freeze to the dummy input's shape.
    """
    import onnx
    import torch

    folder = check_student_dir(student_dir)
    target = Path(out_path) if out_path is not None else onnx_file(folder)
    model = load_classifier(folder, attn_implementation="eager")
    # avatar.json's labels and the weights' head must agree: files mixed from two students
    # would export a model whose labels name other classes
    check_student_fits(read_student_meta(folder), folder, num_labels=int(model.config.num_labels),
                       labels_of="its weights' classifier head")
    model.eval()
    wrapper = _logits_only(model).eval()
    args = _dummy_inputs(model.config)
    dynamic = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES}
    dynamic[OUTPUT_NAME] = {0: "batch"}
    with atomic_path(target) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about Python ints in transformers' code
        with torch.no_grad():
            torch.onnx.export(
                wrapper, args, str(tmp), input_names=list(INPUT_NAMES), output_names=[OUTPUT_NAME],
                dynamic_axes=dynamic, opset_version=opset, do_constant_folding=True, dynamo=False,
            )
        # The legacy exporter leaves the module in train mode (dropout on) afterwards.
        wrapper.eval()
        onnx.checker.check_model(str(tmp))
    return target


def quantize_int8(onnx_path: str | os.PathLike[str], out_path: str | os.PathLike[str] | None = None) -> Path:
    """Dynamic int8 quantisation of weights (activations stay float); default ``<dir>/model_quantized.onnx``.

    Dynamic quantisation needs no calibration data, which a deployed student rarely ships with.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = Path(onnx_path)
    if not source.is_file():
        raise AvatarError(f"ONNX model not found: {source} (run `avatar export <student_dir>`)")
    target = Path(out_path) if out_path is not None else onnx_file(source.parent, quantized=True)
    hint_filter = _DropPreprocessHint()
    root = logging.getLogger()
    root.addFilter(hint_filter)
    try:
        with atomic_path(target) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8)
    finally:
        root.removeFilter(hint_filter)
    return target


def export_all(student_dir: str | os.PathLike[str], int8: bool = True) -> dict[str, Path]:
    """``{"onnx": path}`` plus ``"int8"`` when asked: everything ``avatar.report.predict`` can load."""
    paths = {"onnx": export_onnx(student_dir)}
    if int8:
        paths["int8"] = quantize_int8(paths["onnx"])
    return paths
