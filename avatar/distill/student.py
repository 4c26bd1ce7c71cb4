"""A student from a candidate: its tokenizer, its model, and the data it trains on.

A student is a standard Hugging Face ``RobertaForSequenceClassification`` with a
``PreTrainedTokenizerFast`` of its own (trained on the task's unlabeled code, see
``avatar.distill.tokenizer``), so a saved student loads anywhere with ``from_pretrained`` and no
Avatar code. That is also why a pair task (clone detection) encodes both snippets as ONE
sequence pair, ``<s> A </s></s> B </s>`` truncated jointly to the candidate's
``max_sequence_length`` (longest first): a two-tower model would need a custom class.

The data module tokenises each example at most once (on first use, in batches, kept in
memory): a short surrogate run pays only for the examples it reads, a long run pays once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from transformers import PreTrainedTokenizerFast, RobertaConfig, RobertaForSequenceClassification

from avatar.code.metamorphic import FORMAT as METAMORPHIC_FORMAT
from avatar.code.metamorphic import MetamorphicCopy, canonical_codes, canonical_split
from avatar.core.errors import AvatarError, DataError
from avatar.distill.tokenizer import cached_tokenizer
from avatar.learn.resumable import resumable_loader
from avatar.run.executor import torch_threads
from avatar.search.cost import MB, size_bytes
from avatar.search.space import Candidate, model_config
from avatar.search.variables import candidate_vars
from avatar.task.base import Code, Example, Split, Task, label_names, label_signature, snippets  # noqa: F401  (re-exported)
from avatar.teach.teacher import Knowledge, check_knowledge, stable_key

log = logging.getLogger("avatar")


def default_cache_dir() -> Path:
    """``$AVATAR_CACHE`` or ``~/.cache/avatar`` (the same default as ``configs/paths``)."""
    return Path(os.environ.get("AVATAR_CACHE") or Path.home() / ".cache" / "avatar")


TOKENIZER_FORMAT = 2
"""Version of the cached tokenizers' content: bump it when ``avatar.distill.tokenizer`` changes what
it trains (normalisation, pre-tokenisation, special tokens), so no run loads an old one."""


def tokenizer_key(task: Task) -> str:
    """The tokenizer cache folder of ``task``: ``<name>-<unlabel_train fingerprint>-<signature>``.

    The fingerprint covers the corpus (a different ``data.limit`` or changed data trains a
    new tokenizer); the signature hashes the task's labels and ``TOKENIZER_FORMAT``. The
    kind and vocabulary size (the candidate's part) name the subfolder (``BPE_1000``).
    """
    signature = stable_key(label_signature(task), TOKENIZER_FORMAT)
    return f"{task.name}-{task.fingerprint('unlabel_train')}-{signature}"


def build_tokenizer(
    candidate: Candidate, task: Task, cache_dir: str | os.PathLike[str], canonical: bool = False
) -> PreTrainedTokenizerFast:
    """The candidate's tokenizer, trained on ``task``'s unlabeled code once and cached (``tokenizer_key``).

    ``canonical``: trained on that code's canonical form (``distill.canonical_names``), so no
    vocabulary goes to names the student never reads."""
    cache = Path(cache_dir)

    def corpus() -> list[str]:
        if not canonical:
            return task.texts("unlabel_train")
        codes = canonical_split(task, "unlabel_train", cache)
        return [text for code in codes for text in snippets(code)]

    return cached_tokenizer(
        candidate["tokenizer"],
        int(candidate["vocab_size"]),
        texts_provider=corpus,
        cache_dir=cache / "tokenizers",
        key=tokenizer_key(task) + (f"-canonical{METAMORPHIC_FORMAT}" if canonical else ""),
        max_length=int(candidate["max_sequence_length"]),
    )


def build_model(
    candidate: Candidate, num_labels: int, labels: Sequence[str] | None = None
) -> RobertaForSequenceClassification:
    """A freshly initialised student of the candidate's architecture.

    Attention is eager for relative position types (sdpa would fall back to it with a
    warning), sdpa otherwise.
    """
    options: dict[str, Any] = model_config(candidate, num_labels)
    if labels is not None:
        options["id2label"] = dict(enumerate(labels))
        options["label2id"] = {name: i for i, name in enumerate(labels)}
    relative = options["position_embedding_type"] != "absolute"
    config = RobertaConfig(**options, attn_implementation="eager" if relative else "sdpa")
    return RobertaForSequenceClassification(config)


@contextmanager
def random_weight_model(
    candidate: Candidate, num_labels: int, seed: int, threads: int
) -> Iterator[RobertaForSequenceClassification]:
    """The candidate's student with random weights, in eval mode, under ``threads`` torch threads.

    Measuring meters time a model before it is ever trained: weights do not change the
    cost, and building it the way students are built keeps the attention implementation
    the deployed student will use.
    """
    with torch_threads(threads):
        torch.manual_seed(seed)
        yield build_model(candidate, num_labels).eval()


def parameter_bytes(model: torch.nn.Module) -> int:
    """Bytes of the model's parameters as stored (fp32: 4 per parameter)."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


def promised_size_mb(candidate: Candidate, num_labels: int) -> float:
    """The size the search's cost formula promised for this candidate, in MiB."""
    return int(size_bytes(candidate_vars(candidate, num_labels))) / MB


# ---------------------------------------------------------------------------------- data


def text_length(text: Code) -> int:
    """An example's length in characters (a pair's both sides): the key evaluation batches are sorted by."""
    return len(text) if isinstance(text, str) else len(text[0]) + len(text[1])


class EncodedSplit(Dataset):
    """One split's inputs and targets; token ids are computed on first use and kept.

    Items are indices: ``collate`` encodes the batch's not-yet-seen examples with one
    batched tokenizer call (fast in Rust), pads to the batch's longest sequence and
    stacks the targets (float logits for soft targets, int64 labels otherwise).
    """

    def __init__(
        self, texts: list[Code], targets: torch.Tensor, tokenizer: PreTrainedTokenizerFast, max_length: int
    ) -> None:
        if len(texts) != len(targets):
            raise AvatarError(f"{len(texts)} inputs but {len(targets)} targets")
        self.texts = texts
        self.targets = targets
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 1)
        self.ids: list[list[int] | None] = [None] * len(texts)

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: int) -> int:
        return index

    def encode(self, indices: Sequence[int]) -> None:
        """Tokenise the examples of ``indices`` not encoded yet."""
        todo = [i for i in indices if self.ids[i] is None]
        if not todo:
            return
        first = [self.texts[i] for i in todo]
        if isinstance(first[0], str):
            encoded = self.tokenizer(first, truncation=True, max_length=self.max_length)
        else:
            encoded = self.tokenizer(
                [t[0] for t in first],
                [t[1] for t in first],  # type: ignore[index]
                truncation=True,
                max_length=self.max_length,
            )
        for i, ids in zip(todo, encoded["input_ids"]):
            self.ids[i] = ids

    def encode_all(self, chunk: int = 1024) -> None:
        for start in range(0, len(self), chunk):
            self.encode(range(start, min(start + chunk, len(self))))

    def token_lengths(self) -> list[int]:
        """Every example's length in tokens after truncation (tokenising all first): the key that
        ``group_by_length`` sorts by. Why tokens, not characters: truncation cuts at tokens, and on
        BigCloneBench sorting pairs by characters left 61% of the first 150 batches padded to 512
        tokens (44% of the pairs are that long), sorting by tokens 50%."""
        self.encode_all()
        return [len(ids) for ids in self.ids]  # type: ignore[arg-type]

    def collate(self, indices: list[int]) -> dict[str, torch.Tensor]:
        self.encode(indices)
        rows = [self.ids[i] for i in indices]
        width = max(len(r) for r in rows)  # type: ignore[arg-type]
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for row, ids in enumerate(rows):
            input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)  # type: ignore[arg-type]
            attention[row, : len(ids)] = 1  # type: ignore[arg-type]
        return {"input_ids": input_ids, "attention_mask": attention, "targets": self.targets[indices]}


class _ByLength(Sampler[int]):
    """Evaluation order: a seeded shuffle, sorted by text length within windows of batches.

    Batches of similar lengths pad (and cost) least, while any prefix of batches is still a
    random sample of the split, so ``limit_val_batches`` does not pick the shortest texts.
    """

    def __init__(self, split: EncodedSplit, batch_size: int, seed: int, window_batches: int = 16) -> None:
        order = np.random.default_rng(seed).permutation(len(split)).tolist()
        window = max(1, batch_size * window_batches)
        self.order: list[int] = []
        for start in range(0, len(order), window):
            self.order += sorted(order[start : start + window], key=lambda i: text_length(split.texts[i]))

    def __iter__(self):  # noqa: ANN204 - Iterator[int]
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)


def _gold(task: Task, split: Split, examples: list[Example]) -> torch.Tensor:
    missing = sum(e.label is None for e in examples)
    if missing:
        raise DataError(f"task {task.name!r}: {missing} examples of split {split!r} have no gold label")
    return torch.tensor([e.label for e in examples], dtype=torch.long)


class StudentDataModule(L.LightningDataModule):
    """Train on the teacher's knowledge of ``unlabel_train``; validate and test on gold labels.

    ``soft`` picks the targets: the teacher's logits (needs ``knowledge.logits``) or its
    hard labels (``knowledge.labels()``: the argmax when only logits exist). The training
    set may be capped to ``max_train_examples`` (a seeded random subset, the same for every
    candidate of a run) so short surrogate runs never touch the rest.
    """

    def __init__(
        self,
        task: Task,
        tokenizer: PreTrainedTokenizerFast,
        knowledge: Knowledge | None,
        batch_size: int,
        max_length: int,
        soft: bool = True,
        eval_batch_size: int = 64,
        num_workers: int = 0,
        max_train_examples: int | None = None,
        seed: int = 42,
        holdout: int = 0,
        augmented: Sequence[MetamorphicCopy] = (),
        group_by_length: bool = False,
        canonical: Callable[[Split], list[Code]] | None = None,
    ) -> None:
        super().__init__()
        if soft and knowledge is not None and knowledge.logits is None:
            raise AvatarError("soft distillation needs teacher logits; this teacher gave hard labels only")
        self.task = task
        self.tokenizer = tokenizer
        self.knowledge = knowledge
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size)
        self.max_length = int(max_length)
        self.soft = soft
        self.num_workers = int(num_workers)
        self.max_train_examples = max_train_examples
        self.seed = seed
        self.holdout = int(holdout)
        self.augmented = list(augmented)
        self.group_by_length = bool(group_by_length)
        # distill.canonical_names: every split read in canonical form (a split's texts, in order)
        self.canonical = canonical
        self._splits: dict[str, EncodedSplit] = {}

    def split(self, name: Split) -> EncodedSplit:
        """The split's dataset, built on first use and kept (with its token ids)."""
        if name not in self._splits:
            self._splits[name] = self._build(name)
        return self._splits[name]

    def _build(self, name: Split) -> EncodedSplit:
        examples = self.task.read_split(name)
        if name == "unlabel_train":
            if self.knowledge is None:
                raise AvatarError("training a student needs teacher knowledge")
            check_knowledge(self.task, self.knowledge, unlabeled=len(examples))
            values = self.knowledge.logits if self.soft else self.knowledge.labels()
            # a copy: knowledge shipped through Ray's object store arrives read-only
            targets = torch.from_numpy(np.array(values, copy=True))
            keep = self._trained_rows(len(examples))
            read = self._texts(name, examples)
            texts = [read[i] for i in keep]
            rows = list(keep)
            # each metamorphic copy adds its variant of every trained row it has: the target is the
            # original's (the transform keeps the meaning; the teacher's logits are of the original)
            for copy in self.augmented:
                variants = [(i, copy.codes[i]) for i in keep if copy.codes[i] is not None]
                texts += [variant for _, variant in variants]  # type: ignore[misc]
                rows += [i for i, _ in variants]
            targets = targets[torch.as_tensor(rows, dtype=torch.long)]
        else:
            texts = self._texts(name, examples)
            targets = _gold(self.task, name, examples)
        if not texts:
            raise DataError(f"task {self.task.name!r}: split {name!r} is empty")
        return EncodedSplit(texts, targets, self.tokenizer, self.max_length)

    def _order(self, count: int) -> np.ndarray:
        """The seeded order of the unlabeled rows: the first ``holdout`` are held out."""
        if self.holdout < 0 or self.holdout >= count:
            raise AvatarError(f"distill.holdout must be in 0..{count - 1} (the unlabeled examples), "
                              f"got {self.holdout}")
        return np.random.default_rng(self.seed).permutation(count)

    def _trained_rows(self, count: int) -> np.ndarray:
        """Unlabeled rows trained on, in file order: all but the held out, at most ``max_train_examples``."""
        if not self.holdout and (self.max_train_examples is None or self.max_train_examples >= count):
            return np.arange(count)
        rest = self._order(count)[self.holdout:]
        if self.max_train_examples is not None:
            rest = rest[: self.max_train_examples]
        return np.sort(rest)

    def holdout_split(self) -> EncodedSplit | None:
        """The held-out unlabeled examples with the teacher's (hard) labels; None without a holdout."""
        if not self.holdout:
            return None
        if self.knowledge is None:
            raise AvatarError("a holdout needs teacher knowledge")
        examples = self.task.read_split("unlabel_train")
        held = np.sort(self._order(len(examples))[: self.holdout])
        targets = torch.from_numpy(np.array(self.knowledge.labels()[held], copy=True))
        read = self._texts("unlabel_train", examples)
        texts = [read[i] for i in held]
        return EncodedSplit(texts, targets, self.tokenizer, self.max_length)

    def _texts(self, name: Split, examples: list[Example]) -> list[Code]:
        """What the student reads of a split's examples: their code, or its canonical form."""
        if self.canonical is None:
            return [e.text for e in examples]
        texts = self.canonical(name)
        if len(texts) != len(examples):
            raise AvatarError(f"the canonical form of split {name!r} has {len(texts)} examples, "
                              f"not {len(examples)}")
        return texts

    def setup(self, stage: str) -> None:
        if stage == "fit":
            self.split("unlabel_train")
            self.split("valid")
        elif stage == "validate":
            self.split("valid")
        elif stage == "test":
            self.split("test")

    def _loader(self, split: EncodedSplit, train: bool) -> DataLoader:
        options: dict[str, Any] = {"num_workers": self.num_workers, "collate_fn": split.collate}
        if train:  # a checkpoint carries its position: a resumed run sees the batches it would have
            lengths = split.token_lengths() if self.group_by_length else None
            return resumable_loader(split, self.batch_size, self.seed, lengths, **options)
        sampler = _ByLength(split, self.eval_batch_size, self.seed)
        generator = torch.Generator().manual_seed(self.seed)  # workers' seeds: none drawn from dropout's
        return DataLoader(split, batch_size=self.eval_batch_size, sampler=sampler, generator=generator,
                          **options)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.split("unlabel_train"), train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.split("valid"), train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.split("test"), train=False)


@torch.inference_mode()
def predicted_labels(model: torch.nn.Module, split: EncodedSplit, batch_size: int = 64) -> torch.Tensor:
    """``model``'s predicted class for every example of ``split``, in order."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(split), batch_size):
        batch = split.collate(list(range(start, min(start + batch_size, len(split)))))
        logits = model(input_ids=batch["input_ids"].to(device),
                       attention_mask=batch["attention_mask"].to(device)).logits
        out.append(logits.argmax(dim=-1).cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


FLIPS = "test/flips"
FLIP_RATE = "test/flip_rate"
VAL_FLIP_RATE = "val/flip_rate"  # a brief run's, on the validation split's copy


def flip_metrics(model: torch.nn.Module, data: StudentDataModule, copy: MetamorphicCopy,
                 batch_size: int = 64, split: str = "test", limit: int | None = None) -> dict[str, float]:
    """Robustness: the ``split`` examples whose predicted label changes on their metamorphic copy.

    Over the examples the copy has (skipped ones are left out of both sides; the first
    ``limit`` of them when given): ``<prefix>/flips`` (a count), ``<prefix>/flip_rate`` (flips /
    compared) and ``<prefix>/flip_examples`` (compared); the prefix is ``test`` or ``val``.
    """
    examples = data.split(split)
    kept = copy.kept[:limit] if limit else copy.kept
    dummy = torch.zeros(len(kept), dtype=torch.long)
    original = EncodedSplit([examples.texts[i] for i in kept], dummy, data.tokenizer, data.max_length)
    variants: list[Code] = [copy.codes[i] for i in kept]  # type: ignore[misc]  # kept: never None
    if data.canonical is not None:  # the student reads canonical names: so it reads the copy
        variants = canonical_codes(variants, data.task.language)  # type: ignore[arg-type, assignment]
    variant = EncodedSplit(variants, dummy, data.tokenizer, data.max_length)
    before = predicted_labels(model, original, batch_size)
    flips = int((before != predicted_labels(model, variant, batch_size)).sum())
    prefix = "test" if split == "test" else "val"
    return {f"{prefix}/flips": float(flips), f"{prefix}/flip_rate": flips / max(1, len(kept)),
            f"{prefix}/flip_examples": float(len(kept))}


@torch.inference_mode()
def agreement(model: torch.nn.Module, split: EncodedSplit, batch_size: int = 64) -> float:
    """Share of ``split``'s examples where ``model`` predicts its targets (the teacher's labels)."""
    return float((predicted_labels(model, split, batch_size) == split.targets).float().mean())
