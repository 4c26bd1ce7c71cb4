"""Exact cost formulas of a student: parameter count and forward FLOPs.

Written once over an abstract ``Vars`` (see ``avatar.search.smt``) so the same formula is a z3
term for pruning, a numpy array for counting the feasible grid, and a Python number for
one candidate. The formulas mirror ``transformers`` 4.57 ``RobertaForSequenceClassification``
module by module; tests compare them with real models.
"""

from __future__ import annotations

from typing import Any

from avatar.core.errors import AvatarError

RELATIVE_TYPES = ("relative_key", "relative_key_query")
BYTES_PER_PARAMETER = 4  # fp32
MB = 2**20  # sizes are MiB of fp32 parameters, as the paper's size script computes them
PARAMETER_DIMENSIONS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "intermediate_size",
    "num_attention_heads",
    "max_sequence_length",
    "position_embedding_type",
)
"""The dimensions ``parameter_count`` reads (what a constraint on it declares)."""


def parameter_count(x: Any) -> Any:
    """Trainable parameters of the student (embeddings, position table and head included)."""
    hidden = x.value("hidden_size")
    layers = x.value("num_hidden_layers")
    vocab = x.value("vocab_size")
    inter = x.value("intermediate_size")
    heads = x.value("num_attention_heads")
    positions = x.value("max_sequence_length") + 2
    labels = x.num_labels

    # word + position + token type (1 row) + LayerNorm
    embeddings = vocab * hidden + positions * hidden + hidden + 2 * hidden
    # q, k, v, attention output (weights + biases), two LayerNorms, FFN in and out
    layer = 4 * hidden * hidden + 2 * hidden * inter + 9 * hidden + inter
    # relative position types add a distance table of head size per layer
    is_relative = x.any([x.is_("position_embedding_type", t) for t in RELATIVE_TYPES])
    distance_table = x.where(is_relative, (2 * positions - 1) * x.div(hidden, heads), 0)
    # RobertaClassificationHead: dense H->H, out_proj H->labels
    head = hidden * hidden + hidden + hidden * labels + labels
    return embeddings + layers * (layer + distance_table) + head


def size_bytes(x: Any) -> Any:
    return BYTES_PER_PARAMETER * parameter_count(x)


def forward_flops(x: Any) -> Any:
    """FLOPs of one forward pass at batch 1 over the full sequence (2 per multiply-add).

    Counts what ``torch.utils.flop_counter`` counts on the eager-attention model: the
    linear layers, the two attention matmuls, the relative-position einsums (one for
    ``relative_key``, two for ``relative_key_query``) and the head on the first token.
    """
    hidden = x.value("hidden_size")
    layers = x.value("num_hidden_layers")
    inter = x.value("intermediate_size")
    seq = x.value("max_sequence_length")
    labels = x.num_labels

    linear = 2 * seq * (4 * hidden * hidden + 2 * hidden * inter)
    attention = 4 * seq * seq * hidden
    relative = x.where(
        x.is_("position_embedding_type", "relative_key"),
        2 * seq * seq * hidden,
        x.where(x.is_("position_embedding_type", "relative_key_query"), 4 * seq * seq * hidden, 0),
    )
    head = 2 * hidden * hidden + 2 * hidden * labels
    return layers * (linear + attention + relative) + head


def training_memory_bytes(x: Any) -> Any:
    """Peak memory of one training step of the student at its batch size over the full sequence.

    Why: inside 3 MiB of parameters the paper's space holds students whose *activations* do
    not fit a laptop: 11 layers of 8 heads at 512 tokens and batch 64 need about 20 GiB for one
    step, and one such candidate of the indicator's ground truth was killed for memory on a
    24 GB machine. Per layer, eager attention keeps about three tensors of batch x heads x
    seq^2 floats for the backward pass (scores, probabilities, dropout), one more per
    relative-position einsum, and about ``10 * hidden + 2 * intermediate`` floats per token;
    the weights, their gradients and AdamW's two moments add four copies of the parameters.
    The measured peak RSS of a real training step is 0.94 to 1.5 times this estimate for
    five students of 0.3 to 2 GiB (``bench/train_memory_bench.py``, docs/benchmarks.md); the
    largest excess is at the smallest, where the allocator's own overhead counts most.
    """
    hidden = x.value("hidden_size")
    layers = x.value("num_hidden_layers")
    inter = x.value("intermediate_size")
    heads = x.value("num_attention_heads")
    seq = x.value("max_sequence_length")
    batch = x.value("batch_size")
    relative = x.where(
        x.is_("position_embedding_type", "relative_key"), 1,
        x.where(x.is_("position_embedding_type", "relative_key_query"), 2, 0),
    )
    attention = (3 + relative) * batch * heads * seq * seq
    tokens = batch * seq * (10 * hidden + 2 * inter)
    return BYTES_PER_PARAMETER * (layers * (attention + tokens) + 4 * parameter_count(x))


def available_memory_bytes() -> int | None:
    """RAM the kernel says a new allocation can get now (``MemAvailable``), or None off Linux."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_training_memory(candidate_vars: Any, what: str, available: int | None) -> None:
    """One line, before any training, when the student's training step (``training_memory_bytes``)
    needs more RAM than ``available``: the kernel would otherwise kill the process mid-run,
    with no message and nothing saved."""
    needed = int(training_memory_bytes(candidate_vars))
    if available is not None and needed > available:
        raise AvatarError(
            f"{what} needs about {needed / 2**30:.1f} GiB of RAM for one training step at its batch size "
            f"and sequence length; {available / 2**30:.1f} GiB are available: choose a smaller candidate "
            "or batch size, or search with constraints=size3mb_memory (train_memory.max_gb)")
