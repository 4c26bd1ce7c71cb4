"""Measuring one model: size, GFLOPs, quality, latency and energy on this machine.

Every model is measured the same way, on the same examples of one split: loaded through
``avatar.report.predict.Predictor`` (so tokenisation is included, as a deployed model pays
it), run at batch 1, timed per example (median and IQR over the examples), and the whole run
measured by codecarbon (``avatar.run.green``). A report then re-times every model's latency
with the models interleaved (``avatar.report.latency``). Energy and CO2 are per 1,000
examples, extrapolated linearly from the N measured.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from avatar.code.metamorphic import MetamorphicCopy
from avatar.core.errors import AvatarError
from avatar.distill.folder import onnx_file
from avatar.report.rows import KINDS, ReportRow, set_latency
from avatar.run.executor import torch_threads
from avatar.search.cost import MB
from avatar.task.base import Task

if TYPE_CHECKING:
    from avatar.run.green import InferenceMeasurement

log = logging.getLogger("avatar")


def parameter_count(model_dir: str | os.PathLike[str]) -> int:
    """Parameters of a saved sequence classifier, counted on the meta device (no weights read)."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(model_dir)
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config)
    return sum(p.numel() for p in model.parameters())


def model_gflops(model_dir: str | os.PathLike[str]) -> float | None:
    """Analytic GFLOPs of one forward pass at the model's full sequence length (``avatar.search.cost``)."""
    from avatar.search.cost import forward_flops
    from avatar.search.variables import ValueVars

    try:
        config = json.loads((Path(model_dir) / "config.json").read_text())
        values = {key: config[key] for key in ("hidden_size", "num_hidden_layers", "intermediate_size")}
    except (OSError, KeyError, json.JSONDecodeError):
        return None
    values["max_sequence_length"] = min(int(config.get("max_position_embeddings", 514)) - 2, 512)
    values["position_embedding_type"] = config.get("position_embedding_type", "absolute")
    labels = len(config.get("id2label") or {0: 0, 1: 1})
    return int(forward_flops(ValueVars(values, labels))) / 1e9


def model_size_mb(model_dir: str | os.PathLike[str], backend: str) -> float:
    """fp32 parameter MiB for ``torch``; the exported file's MiB for ``onnx``/``int8``."""
    if backend == "torch":
        return parameter_count(model_dir) * 4 / MB
    path = onnx_file(model_dir, quantized=backend == "int8")
    if not path.is_file():
        raise AvatarError(f"missing {path}: run `avatar export {model_dir}` first")
    return path.stat().st_size / MB


def model_name(model_dir: str | os.PathLike[str]) -> str:
    """``runs/students/c03/student`` -> ``c03``: the folder that tells students apart."""
    folder = Path(model_dir).resolve()
    return folder.parent.name if folder.name in ("student", "model") else folder.name


def score(task: Task, predictions: np.ndarray, labels: Sequence[int | None]) -> dict[str, float]:
    """The task's metrics over the examples that have a gold label ({} when none has)."""
    import torch

    keep = [i for i, label in enumerate(labels) if label is not None]
    if not keep:
        return {}
    metrics = task.metrics()
    metrics.update(torch.as_tensor(predictions[keep]), torch.as_tensor([labels[i] for i in keep]))
    return {name: float(value) for name, value in metrics.compute().items()}


def measure_model(model_dir: str | os.PathLike[str], task: Task, backend: str = "torch",
                  n_examples: int = 100, split: str = "test", kind: str | None = None,
                  name: str | None = None, warmup: int = 2, threads: int | None = None,
                  copy: MetamorphicCopy | None = None) -> ReportRow:
    """Size, task metrics, batch-1 latency and energy of one saved model on up to ``n_examples``.

    ``model_dir`` is a folder with the Hugging Face model and its ``tokenizer.json`` (a
    student, or a teacher saved the same way). ``threads`` sets PyTorch's intra-op threads
    for the measurement (ONNX Runtime keeps its own default). With ``copy`` (the split's
    metamorphic copy), the row's ``flips`` count the measured examples whose predicted label
    changes on their copy.
    """
    import torch

    from avatar.report.predict import Predictor
    from avatar.run.green import inference_workload

    if not Path(model_dir).is_dir():
        raise AvatarError(f"model folder not found: {model_dir}")
    kind = kind or ("student" if backend == "torch" else backend)
    if kind not in KINDS:
        raise AvatarError(f"unknown report kind {kind!r}; choose one of {', '.join(KINDS)}")
    examples = task.read_split(split)[: max(1, n_examples)]  # type: ignore[arg-type]
    if not examples:
        raise AvatarError(f"task {task.name!r} has no {split} examples to measure on")
    predictor = Predictor.load(model_dir, backend=backend)
    with torch_threads(threads):
        used_threads = torch.get_num_threads()
        result = inference_workload(predictor, [e.code for e in examples], batch_size=1, warmup=warmup,
                                    name=f"report-{kind}")
    assert result.outputs is not None
    predictions = result.outputs.argmax(axis=-1)
    metrics = score(task, predictions, [e.label for e in examples])
    energy, co2 = result.per_1000()
    flips = flip_count(predictor, predictions, copy, len(examples), threads)
    label = name or model_name(model_dir)
    row = ReportRow(
        name=label if kind in ("teacher", "student") else f"{label} ({kind})",
        kind=kind, size_mb=model_size_mb(model_dir, backend), metric_name=task.headline_metric,
        metric=metrics.get(task.headline_metric), latency_ms=result.latency_ms, energy_kwh_per_1k=energy,
        co2_g_per_1k=co2, estimated=result.measurement.estimated, n_examples=len(examples),
        backend=backend, split=split, threads=used_threads, gflops=model_gflops(model_dir),
        path=str(model_dir), metrics=metrics, labels=list(predictor.meta.labels),
        collapsed=len(examples) > 1 and len(set(predictions.tolist())) == 1, predictions=predictions.tolist(),
        flips=flips[0] if flips else None, flip_examples=flips[1] if flips else None,
    )
    _keep_spread(row, result)
    return row


def _keep_spread(row: ReportRow, result: InferenceMeasurement) -> None:
    """The workload's per-example spread and load on ``row`` (a report may re-time it interleaved)."""
    if result.latency is not None:
        set_latency(row, result.latency, result.load is not None and result.load.loaded)


def flip_count(predictor: Any, predictions: np.ndarray, copy: MetamorphicCopy | None, n: int,
               threads: int | None) -> tuple[int, int] | None:
    """(flips, compared) over the first ``n`` examples that have a metamorphic copy; None without one."""
    if copy is None:
        return None
    kept = [i for i in copy.kept if i < n]
    if not kept:
        return 0, 0
    with torch_threads(threads):
        variants = predictor.logits([copy.codes[i] for i in kept]).argmax(axis=-1)
    return int((variants != predictions[kept]).sum()), len(kept)


def measure_architecture(architecture: Mapping[str, Any], task: Task, name: str, n_examples: int = 50,
                         split: str = "test", threads: int | None = None) -> ReportRow:
    """The cost row of a teacher known only by its architecture (the paper's logits files).

    Its model is built with random weights (they cost what trained ones do, as the latency
    and energy meters assume) and run at batch 1 on ``n_examples`` random sequences of its
    maximum length: size, latency and energy are measured, quality is unknown (n/a), so the
    ratios and the payback exist while agreement comes from ``distill.holdout``.
    """
    import torch

    from avatar.distill.student import parameter_bytes, random_weight_model
    from avatar.run.green import inference_workload, random_sequences
    from avatar.search.cost import forward_flops
    from avatar.search.space import Candidate
    from avatar.search.variables import candidate_vars

    candidate = Candidate.from_dict(dict(architecture))
    with torch_threads(threads):
        used_threads = torch.get_num_threads()
        with random_weight_model(candidate, task.num_labels, seed=0, threads=used_threads) as model:
            inputs = random_sequences(model.config.vocab_size, int(candidate["max_sequence_length"]),
                                      max(1, n_examples))
            result = inference_workload(model, inputs, batch_size=1, warmup=1, name="report-teacher-cost")
            size_mb = parameter_bytes(model) / MB
    energy, co2 = result.per_1000()
    row = ReportRow(
        name=f"{name} (cost: its architecture, random weights)", kind="teacher", size_mb=size_mb,
        metric_name=task.headline_metric, metric=None, latency_ms=result.latency_ms,
        energy_kwh_per_1k=energy, co2_g_per_1k=co2, estimated=result.measurement.estimated,
        n_examples=result.n, split=split, threads=used_threads,
        gflops=int(forward_flops(candidate_vars(candidate, task.num_labels))) / 1e9,
    )
    _keep_spread(row, result)
    return row
