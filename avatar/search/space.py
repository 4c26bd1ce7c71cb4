"""The configuration space as data, and the candidates that live in it.

Why data and not code: users widen or narrow the space (a 1 MB budget needs smaller
hidden sizes) by editing a YAML list, and the z3 encoding, the search's genome and the
student builder all read the same list. A dimension is a name (a ``RobertaConfig``
keyword where it is an architecture knob) and its ordered choices; a ``Candidate`` is one
choice per dimension.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from avatar.core.errors import AvatarError

# Used when a (user's) space leaves a dimension out: the value every candidate then has.
DEFAULTS: dict[str, Any] = {
    "tokenizer": "BPE",
    "vocab_size": 1000,
    "num_hidden_layers": 1,
    "hidden_size": 16,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "intermediate_size": 32,
    "num_attention_heads": 1,
    "attention_probs_dropout_prob": 0.1,
    "max_sequence_length": 256,
    "position_embedding_type": "absolute",
    "learning_rate": 1e-4,
    "batch_size": 16,
}

# Dimensions copied verbatim into RobertaConfig.
ARCHITECTURE_KEYS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "position_embedding_type",
)

# What an inference measurement (latency, energy) of a random-weight model depends on: the
# architecture without its dropouts (off at inference) and the sequence length it runs at.
# The tokenizer, learning rate and batch size only change training.
INFERENCE_KEYS = (*(k for k in ARCHITECTURE_KEYS if not k.endswith("dropout_prob")), "max_sequence_length")

# RoBERTa offsets positions by padding_idx + 1, so a sequence of n tokens needs n + 2 rows.
POSITION_OFFSET = 2


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Dimension:
    """One axis of the space: a name and its ordered, distinct choices."""

    name: str
    choices: tuple[Any, ...]

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Dimension:
        """``{name, choices: [...]}`` or ``{name, low, high, step}`` (inclusive range)."""
        name = spec.get("name")
        if not name:
            raise AvatarError(f"space dimension without a name: {dict(spec)}")
        if "choices" in spec and spec["choices"] is not None:
            choices = tuple(spec["choices"])
        elif "low" in spec and "high" in spec:
            choices = _inclusive_range(name, spec["low"], spec["high"], spec.get("step", 1))
        else:
            raise AvatarError(f"space dimension {name!r} needs 'choices' or 'low'/'high'/'step'")
        if not choices:
            raise AvatarError(f"space dimension {name!r} has no values")
        if len(set(choices)) != len(choices):
            raise AvatarError(f"space dimension {name!r} repeats a value: {list(choices)}")
        return cls(str(name), choices)

    @property
    def is_integer(self) -> bool:
        """Integer dimensions enter z3 arithmetic by value; the others by index."""
        return all(_is_int(c) for c in self.choices)

    def index(self, value: Any) -> int:
        try:
            return self.choices.index(value)
        except ValueError:
            raise AvatarError(
                f"{value!r} is not a value of dimension {self.name!r}; choices: {list(self.choices)}"
            ) from None

    def __len__(self) -> int:
        return len(self.choices)


def _inclusive_range(name: str, low: Any, high: Any, step: Any) -> tuple[Any, ...]:
    if step is None or step <= 0:
        raise AvatarError(f"space dimension {name!r}: step must be positive, got {step!r}")
    if high < low:
        return ()
    if all(_is_int(v) for v in (low, high, step)):
        return tuple(range(low, high + 1, step))
    # Decimal keeps 0.2, 0.3, ... exact instead of 0.30000000000000004.
    lo, hi, st = (Decimal(str(v)) for v in (low, high, step))
    count = int((hi - lo) / st) + 1
    return tuple(float(lo + i * st) for i in range(count))


@dataclass(frozen=True, order=True)
class Candidate:
    """One point of the space: hashable, printable, serialisable (``as_dict``)."""

    items: tuple[tuple[str, Any], ...]

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Candidate:
        return cls(tuple(values.items()))

    def __getitem__(self, name: str) -> Any:
        for key, value in self.items:
            if key == name:
                return value
        if name in DEFAULTS:
            return DEFAULTS[name]
        raise KeyError(name)

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def as_dict(self) -> dict[str, Any]:
        return dict(self.items)

    def key(self) -> str:
        """A stable text key for caches and logs."""
        return ",".join(f"{k}={v}" for k, v in self.items)

    def architecture_key(self) -> str:
        """The key of what inference meters measure (``INFERENCE_KEYS``): candidates that differ
        only in learning rate, batch size, dropouts or tokenizer share one measurement."""
        return ",".join(f"{k}={self[k]}" for k in INFERENCE_KEYS)

    def __str__(self) -> str:
        return "Candidate(" + ", ".join(f"{k}={v}" for k, v in self.items) + ")"


class Space:
    """An ordered list of dimensions; genomes are lists of choice indices."""

    def __init__(self, dimensions: Sequence[Dimension]) -> None:
        if not dimensions:
            raise AvatarError("the configuration space has no dimensions")
        names = [d.name for d in dimensions]
        if len(set(names)) != len(names):
            raise AvatarError(f"the configuration space repeats a dimension: {names}")
        self.dimensions = tuple(dimensions)
        self.by_name = {d.name: d for d in dimensions}

    @classmethod
    def from_config(cls, specs: Iterable[Mapping[str, Any]]) -> Space:
        return cls([Dimension.from_spec(spec) for spec in specs])

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dimensions]

    @property
    def grid_size(self) -> int:
        return math.prod(len(d) for d in self.dimensions)

    def __contains__(self, name: object) -> bool:
        return name in self.by_name

    def candidate(self, indices: Sequence[int]) -> Candidate:
        return Candidate(tuple((d.name, d.choices[i]) for d, i in zip(self.dimensions, indices)))

    def indices(self, candidate: Candidate) -> list[int]:
        return [d.index(candidate[d.name]) for d in self.dimensions]

    def validate(self, values: Mapping[str, Any]) -> Candidate:
        """A candidate from user values (inline config): every dimension present and valid."""
        missing = [n for n in self.names if n not in values]
        extra = [n for n in values if n not in self.by_name]
        if missing or extra:
            raise AvatarError(f"candidate does not fit the space: missing {missing}, unknown {extra}")
        return self.candidate([self.by_name[n].index(values[n]) for n in self.names])

    def random_indices(self, rng: random.Random) -> list[int]:
        return [rng.randrange(len(d)) for d in self.dimensions]

    def distance(self, a: Sequence[int], b: Sequence[int]) -> float:
        """Normalised index distance in [0, 1]: the diversity measure of adaptive random sampling."""
        total = 0.0
        for dim, i, j in zip(self.dimensions, a, b):
            if len(dim) > 1:
                total += abs(i - j) / (len(dim) - 1)
        return total / len(self.dimensions)


def model_config(candidate: Candidate, num_labels: int) -> dict[str, Any]:
    """The ``transformers.RobertaConfig`` keyword arguments of a candidate's student."""
    config = {key: candidate[key] for key in ARCHITECTURE_KEYS}
    config.update(
        max_position_embeddings=int(candidate["max_sequence_length"]) + POSITION_OFFSET,
        type_vocab_size=1,
        num_labels=num_labels,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    return config
