"""A training order that a checkpoint carries, so a resumed run is the run it continues.

Why: Lightning restores the weights, the optimiser, the schedule, the step counts and the
callbacks' states (early stopping, the timer), but a plain ``DataLoader`` has no position:
after a resume mid-epoch it reshuffles from the epoch's start, and the steps after the
resume see other batches than the uninterrupted run would. Dropout draws from torch's
global generator, which Lightning does not save either. Both together made a resumed
student train 625 steps where the uninterrupted one stopped early at 500.

- ``ResumableShuffle`` is the epoch's order: a seeded permutation per epoch (seed and
  epoch number alone decide it, so nothing needs replaying), and the number of batches the
  training loop took from it. That count comes from the loop (``took_batch``, called by
  ``ClassifierModule.on_train_batch_start``), not from the sampler's own position: Lightning fetches one
  batch ahead and DataLoader workers several more, so the sampler runs ahead of training.
- With ``lengths``, an epoch's batches are grouped by length (``group_by_length``): the
  permutation is cut into windows of ``window_batches`` batches, each window sorted by
  length and cut into batches, and the batches shuffled. Why: a batch pads to its longest
  example; on BigCloneBench at 512 tokens a random batch of 16-64 pairs pads to 512 every
  time while the pairs average 407 tokens, so a fifth of a step's tokens were padding.
  Each batch is still a random draw of similar-length examples, and the order of batches random.
- ``ResumableLoader`` is a ``DataLoader`` whose ``state_dict``/``load_state_dict`` are the
  sampler's: Lightning stores them in the checkpoint's loop state and hands them back on
  resume (its "stateful dataloader" protocol). The loader has its own generator for its
  workers' base seed, so starting an epoch draws nothing from the global generator.
- ``save_random_state``/``load_random_state`` put torch's global generator (and CUDA's)
  in the checkpoint, so dropout continues with the numbers it would have drawn.

Under a distributed strategy Lightning wraps the sampler (``DistributedSamplerWrapper``);
the state is then not carried and a resume is near, not exact, as before.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler

RANDOM_STATE_KEY = "avatar_random_state"


class ResumableShuffle(Sampler[int]):
    """One seeded permutation of ``size`` indices per epoch; resumes at a batch boundary.

    With ``lengths`` (one per index), the permutation's batches are grouped by length."""

    def __init__(self, size: int, batch_size: int, seed: int, lengths: Sequence[int] | None = None,
                 window_batches: int = 50) -> None:
        if lengths is not None and len(lengths) != int(size):
            raise ValueError(f"{len(lengths)} lengths for {size} examples")
        self.size = int(size)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.lengths = None if lengths is None else list(lengths)
        self.window_batches = max(1, int(window_batches))
        self.epoch = -1  # the epoch whose order is being served (-1: none yet)
        self.taken = 0  # batches of that epoch the training loop has taken
        self._resume: tuple[int, int] | None = None

    def __len__(self) -> int:
        return self.size

    def order(self, epoch: int) -> list[int]:
        """The permutation of ``epoch``: a function of the seed and the epoch number only."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(self.size, generator=generator).tolist()
        if self.lengths is None:
            return order
        return self._grouped(order, generator)

    def _grouped(self, order: list[int], generator: torch.Generator) -> list[int]:
        """``order`` with each window of batches sorted by length, cut into batches, the full
        batches shuffled; a last partial batch stays last, so every batch keeps its size."""
        lengths, size = self.lengths, self.batch_size
        assert lengths is not None
        window = size * self.window_batches
        grouped: list[int] = []
        for start in range(0, len(order), window):
            grouped += sorted(order[start:start + window], key=lengths.__getitem__)
        full = len(grouped) // size * size
        batches = [grouped[i:i + size] for i in range(0, full, size)]
        shuffled = torch.randperm(len(batches), generator=generator).tolist()
        return [i for b in shuffled for i in batches[b]] + grouped[full:]

    def __iter__(self) -> Iterator[int]:
        epoch, skip = self.epoch + 1, 0
        if self._resume is not None:
            epoch, skip = self._resume
            self._resume = None
            if skip * self.batch_size >= self.size:  # the checkpoint closed its epoch: the next one
                epoch, skip = epoch + 1, 0
        self.epoch, self.taken = epoch, skip
        yield from self.order(epoch)[skip * self.batch_size:]

    def took_batch(self) -> None:
        """The training loop took one batch of this epoch (the resume point moves on)."""
        self.taken += 1

    def state_dict(self) -> dict[str, int]:
        state = {"epoch": self.epoch, "taken": self.taken, "seed": self.seed, "size": self.size}
        return {**state, "grouped": 1} if self.lengths is not None else state

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Resume in the saved epoch after its taken batches; another data set, seed or grouping
        (another order of the same epoch) starts afresh."""
        if state.get("seed") != self.seed or state.get("size") != self.size or state.get("epoch", -1) < 0:
            return
        if state.get("grouped", 0) != (1 if self.lengths is not None else 0):
            return
        self.epoch = int(state["epoch"]) - 1
        self._resume = (int(state["epoch"]), int(state["taken"]))


class ResumableLoader(DataLoader):
    """A ``DataLoader`` over a ``ResumableShuffle`` whose position Lightning checkpoints."""

    def state_dict(self) -> dict[str, Any]:
        return self.sampler.state_dict() if isinstance(self.sampler, ResumableShuffle) else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state and isinstance(self.sampler, ResumableShuffle):
            self.sampler.load_state_dict(state)


def resumable_loader(dataset: Any, batch_size: int, seed: int, lengths: Sequence[int] | None = None,
                     **options: Any) -> ResumableLoader:
    """The training loader: a resumable seeded shuffle (grouped by ``lengths`` when given), and its
    own generator for worker seeds."""
    sampler = ResumableShuffle(len(dataset), batch_size, seed, lengths)
    generator = torch.Generator().manual_seed(seed)
    return ResumableLoader(dataset, batch_size=batch_size, sampler=sampler, generator=generator, **options)


def took_batch(loader: Any) -> None:
    """Tell a ``ResumableLoader`` (as Lightning's ``trainer.train_dataloader``) that training took a batch."""
    if isinstance(loader, ResumableLoader) and isinstance(loader.sampler, ResumableShuffle):
        loader.sampler.took_batch()


def save_random_state(checkpoint: MutableMapping[str, Any]) -> None:
    """Torch's global generator (and each CUDA device's) into ``checkpoint``: dropout's numbers."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    checkpoint[RANDOM_STATE_KEY] = state


def load_random_state(checkpoint: MutableMapping[str, Any]) -> None:
    """Restore what ``save_random_state`` saved; a checkpoint without it changes nothing."""
    state = checkpoint.get(RANDOM_STATE_KEY)
    if not state:
        return
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
