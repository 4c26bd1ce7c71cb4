"""The examples a student sees within its budget: training throughput x the budget, up to a few passes.

Why: on a CPU, inside one 3 MiB size budget, the training cost of a candidate varies more
than 10x (long sequences, many layers, many heads, relative positions), and a student given
30 minutes learns from the examples it gets through. On the indicator ground truth
(``bench/indicator_bench.py``: Latin-hypercube candidates of the paper's whole space
distilled for 30 minutes on real BigCloneBench), the examples each candidate saw ranked its
test accuracy better than the zero-cost proxies did (docs/benchmarks.md, "Indicator
variants against the ground truth"). This indicator predicts that number before any student
trains: real training steps of the untrained candidate (``meters=trainable``'s measurement,
shared with it through the run directory's cache) times the students' wall-clock budget
(``trainer.max_time``).

Two options make it a search's objective rather than a ranker of a sample:

- ``calibration``: measure only this many Latin-hypercube candidates of the feasible space
  and predict every other one's speed from them (``avatar.search.speed``), since measuring
  each candidate a search visits costs about 17 s (an hour for a few hundred).
- ``saturation_epochs``: the examples count up to this many passes over the teacher's
  unlabeled examples, and past that the candidate with more work per example (forward FLOPs:
  width, depth and the tokens it reads of each example) ranks higher. Why: a search climbs to
  the indicator's maximum, and examples alone peak at the smallest student of the space
  (0.09 MiB, 1.3 million pairs in an hour), which stays near 0.80 validation accuracy for
  hundreds of thousands of pairs and ends at 0.8668 in 60 minutes, 4.5 points under a 1.74 MiB
  student that saw a tenth of the pairs: once a student has seen the data a pass or two, its
  capacity limits it, not its examples (that student's validation reached its plateau after
  1.4 passes).
- ``coverage``: ``share`` multiplies the examples by the mean share of each one the candidate
  reads (its tokenizer's length of the task's code against its ``max_sequence_length``,
  ``avatar.search.coverage``): a student that sees many pairs but a quarter of each learns
  less than its count says. ``tokens`` multiplies by the mean tokens it reads of each instead.
  Lengths are measured on ``coverage_examples`` unlabeled examples with real tokenizers at
  ``coverage_points`` vocabulary sizes per kind and interpolated between them (0: each
  candidate's own tokenizer); the tokenizers go to the students' cache, so a student of a
  measured size trains none.
- ``lexical``: also multiplies by the share of the task's identifier occurrences the candidate's
  vocabulary holds as one known token (``avatar.search.lexical``), measured on the same
  examples and at the same vocabulary sizes: a vocabulary near BPE's 256 bytes cuts names into
  near-character pieces, and such a student stayed 1.3-5.4 points lower at equal time (two seeds).

- ``comparison_epochs``: in a pair task (``Task.is_pair``), a student that cannot compare the
  pair's two parts counts its examples only up to this many passes, instead of
  ``saturation_epochs``. A student reads a pair as one sequence. With one layer of attention, the
  classifier's token holds a weighted bag of both functions, and a bag of both is where TF-IDF
  stops too (0.80, against 0.94 on the difference of the two bags: docs/benchmarks.md,
  "Classical baseline"). Comparing takes one layer to match tokens across the two parts and a
  second to gather the matches, and the matching head must tell the vocabulary's tokens apart
  in its own dimensions: ``comparison_head_size`` is the narrowest head (``hidden_size`` /
  heads) that counts (0: depth alone decides). Measured on BigCloneBench (docs/benchmarks.md,
  "One layer or two"): every one-layer whole-space student levelled off at 0.82-0.86 in an hour,
  while the two-layer ``laptop_context`` students reached 0.91-0.92. With depth alone the search's
  front went to two layers of width 16, which raced no better than one; with heads of at least 40
  (``experiment=bcb_laptop``) its top, 2 x 48 with one head, reached 0.9203 over the paper's whole
  space ("The search finds the student"). Off by default, since it only concerns pair tasks.

- ``capacity_weight``: the weight of that work term (``log10`` of forward FLOPs) beside the
  examples' ``log10``. At the default 0.01 it only breaks ties past the cap; at 0.1-0.2 the
  cap becomes the point a search aims at: the student with the most work per example that
  still sees ``saturation_epochs`` passes in its budget (below the cap, doubling the work
  halves the examples and loses; past it, examples stop counting). Measured, that target is
  no better: its pick stayed at 0.83 where a hand-narrowed student reached 0.88 at equal time
  (docs/benchmarks.md, "What the whole-space picks lack"), hence the default.

It sees no labels, so it cannot tell a student that would learn nothing at its learning rate
from one that would: it holds the search at ``learning_rate`` (the rate the ground truth and the
surrogate's brief runs train at), and at ``batch_size`` when set: at one held learning rate a
batch 4x larger takes 4x fewer optimizer steps over the same examples, which an examples count
cannot see (measured on one student: no difference at 30 minutes, so it is off by default).
The same holds for dropout (``dropout``: ``lowest``, a rate, or null for the space's own): no
objective sees it, so a search would draw it at random, and a student that sees each example
at most ``saturation_epochs`` times has no overfitting for dropout to prevent.
A budget in epochs is refused: every student would see the same examples.
"""

from __future__ import annotations

import logging
import math
import random
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from avatar.core.errors import AvatarError
from avatar.core.registry import INDICATORS
from avatar.plugins.meters.training import TrainingThroughputMeter
from avatar.search.cost import forward_flops
from avatar.search.coverage import CoverageModel, calibration_vocabularies, token_lengths
from avatar.search.lexical import LexicalModel, name_counts, whole_share
from avatar.search.objectives import LOWEST, EffectivenessIndicator, MeterContext
from avatar.search.space import DEFAULTS, Candidate
from avatar.search.speed import SpeedModel, leave_one_out_errors
from avatar.search.variables import candidate_vars

log = logging.getLogger("avatar")

COVERAGE_FORMS = ("share", "tokens")

CAPACITY_WEIGHT = 0.01
"""Weight of log10(forward FLOPs) beside log10(examples): 10x the work per example is worth
2.3% more examples, so among students past saturation (equal examples) it decides, and below
it only between near-equal ones."""
MIN_SHARE = 1e-3
"""The lexical share's floor: a vocabulary that keeps no name whole ranks low, not at minus infinity."""


@INDICATORS.register("budget_examples")
class BudgetExamplesIndicator(EffectivenessIndicator):
    """``log10`` of the training examples the candidate would see within the students' budget
    (capped at ``saturation_epochs`` passes), plus a small capacity term."""

    # the teacher's unlabeled examples set the cap of ``saturation_epochs``
    needs_knowledge = True

    def __init__(self, threads: int = 1, runs: int = 3, warmup: int = 1, seed: int = 0,
                 max_seconds: float = 10.0, calibration: int = 0, saturation_epochs: float | None = None,
                 learning_rate: float | None = None, per_token: bool = False, coverage: str | None = None,
                 coverage_points: int = 3, coverage_examples: int = 1000, batch_size: int | None = None,
                 capacity_weight: float = CAPACITY_WEIGHT, lexical: bool = False,
                 dropout: float | str | None = None, comparison_epochs: float | None = None,
                 comparison_head_size: int = 0) -> None:
        if coverage is not None and coverage not in COVERAGE_FORMS:
            raise AvatarError(f"indicator.coverage must be one of {list(COVERAGE_FORMS)} or null, "
                              f"got {coverage!r}")
        if coverage_points < 0 or coverage_points == 1 or coverage_examples < 1:
            raise AvatarError(f"indicator.coverage_points must be 0 (each candidate's own tokenizer) or >= 2 "
                              f"and coverage_examples >= 1, got {coverage_points} and {coverage_examples}")
        if calibration < 0 or calibration == 1:
            raise AvatarError(f"indicator.calibration must be 0 (measure every candidate) or >= 2, "
                              f"got {calibration}")
        if batch_size is not None and not (isinstance(batch_size, int) and batch_size > 0):
            raise AvatarError(f"indicator.batch_size must be a positive integer or null, got {batch_size!r}")
        if not (dropout is None or dropout == LOWEST
                or (isinstance(dropout, int | float) and not isinstance(dropout, bool) and 0 <= dropout < 1)):
            raise AvatarError(f"indicator.dropout must be {LOWEST!r}, a rate in [0, 1) or null, "
                              f"got {dropout!r}")
        if not isinstance(lexical, bool):
            raise AvatarError(f"indicator.lexical must be true or false, got {lexical!r}")
        if not capacity_weight >= 0:
            raise AvatarError(f"indicator.capacity_weight must be >= 0, got {capacity_weight}")
        if comparison_epochs is not None and not (saturation_epochs and comparison_epochs > 0):
            raise AvatarError(f"indicator.comparison_epochs must be > 0 or null, and needs "
                              f"saturation_epochs; got {comparison_epochs} with {saturation_epochs}")
        if not (isinstance(comparison_head_size, int) and comparison_head_size >= 0):
            raise AvatarError(f"indicator.comparison_head_size must be an integer >= 0, "
                              f"got {comparison_head_size!r}")
        if saturation_epochs is not None and not saturation_epochs > 0:
            raise AvatarError(f"indicator.saturation_epochs must be > 0 or null, got {saturation_epochs}")
        self.meter = TrainingThroughputMeter(threads=threads, runs=runs, warmup=warmup, seed=seed,
                                             max_seconds=max_seconds)
        self.seed = seed
        self.calibration = calibration
        self.saturation_epochs = saturation_epochs
        self.comparison_epochs = comparison_epochs
        self.comparison_head_size = comparison_head_size
        self.comparison_cap: float | None = None  # set in prepare for a pair task
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.dropout = dropout
        self.capacity_weight = capacity_weight
        self.per_token = per_token
        self.coverage = coverage
        self.coverage_points = coverage_points
        self.coverage_examples = coverage_examples
        self.lexical = lexical
        self.lengths: CoverageModel | None = None
        self.shares: LexicalModel | None = None
        self.names: Counter[str] = Counter()  # identifier occurrences of the sample (lexical)
        self.sample: list[Any] = []  # the unlabeled examples the lengths are measured on
        self.speed: SpeedModel | None = None
        self.cap: float | None = None

    @property
    def fixed_choices(self) -> dict[str, Any]:
        held = {"learning_rate": self.learning_rate, "batch_size": self.batch_size,
                "hidden_dropout_prob": self.dropout, "attention_probs_dropout_prob": self.dropout}
        return {name: value for name, value in held.items() if value is not None}

    def prepare(self, context: MeterContext) -> None:
        budget_seconds(context)  # a budget in epochs fails before the search starts
        if self.saturation_epochs is not None:
            unlabeled = len(context.teacher_knowledge())
            self.cap = self.saturation_epochs * unlabeled
            log.info("budget_examples: examples count up to %.1f passes over %d unlabeled examples (%d)",
                     self.saturation_epochs, unlabeled, self.cap)
            pairs = context.task is not None and context.task.is_pair
            self.comparison_cap = None
            if self.comparison_epochs is not None and pairs:
                self.comparison_cap = self.comparison_epochs * unlabeled
                narrow = (f" or attention heads under {self.comparison_head_size} wide"
                          if self.comparison_head_size else "")
                log.info("budget_examples: in this pair task, students with one layer%s count up to "
                         "%.2f passes (%d)", narrow, self.comparison_epochs, self.comparison_cap)
        if self.calibration:
            self.speed = self.calibrate(context)
        if self.coverage is not None or self.lexical:
            self.measure_code(context)

    def calibrate(self, context: MeterContext) -> SpeedModel:
        """Measure ``calibration`` Latin-hypercube candidates and fit the speed model on them."""
        if context.pruner is None:
            raise AvatarError("indicator.calibration samples the feasible space; this search has no pruner")
        rng = random.Random(f"budget_examples:{self.seed}")
        genomes = context.pruner.latin_hypercube(self.calibration, rng)
        candidates = [context.space.candidate(genome) for genome in genomes]
        speeds = [self.meter.measure(candidate, context) for candidate in candidates]
        model = SpeedModel.fit(candidates, speeds, context.num_labels)
        errors = leave_one_out_errors(candidates, speeds, context.num_labels)
        log.info("budget_examples: speed model from %d measured candidates (%.2f-%.1f examples/s): "
                 "%.3g s + %.3g s per MiB of a step per example; leave-one-out error median %.0f%%",
                 len(speeds), min(speeds), max(speeds), model.overhead, model.per_mb,
                 100 * statistics.median(abs(e) for e in errors) if errors else float("nan"))
        return model

    def sample_codes(self, context: MeterContext) -> list[Any]:
        """A seeded sample of ``coverage_examples`` unlabeled examples (in their canonical form when
        the students read that): what the coverage and lexical terms measure."""
        if context.task is None or context.cache_dir is None:
            raise AvatarError("indicator.coverage and indicator.lexical measure the task's code with real "
                              "tokenizers; this search has no task or cache folder")
        from avatar.code.metamorphic import canonical_split

        task, cache = context.task, Path(context.cache_dir)
        codes = (canonical_split(task, "unlabel_train", cache) if context.student_canonical_names
                 else [example.text for example in task.read_split("unlabel_train")])
        picked = random.Random(f"coverage:{self.seed}").sample(range(len(codes)),
                                                                min(self.coverage_examples, len(codes)))
        return [codes[i] for i in sorted(picked)]

    def measured_vocabularies(self, context: MeterContext) -> list[tuple[str, int]]:
        """The (kind, vocabulary) pairs measured before the search: ``coverage_points`` sizes per kind."""
        kinds, vocabs = (space_choices(context, name) for name in ("tokenizer", "vocab_size"))
        points = self.coverage_points
        return [(kind, vocab) for kind in kinds
                for vocab in (calibration_vocabularies(vocabs, points) if points else [])]

    def measure_code(self, context: MeterContext) -> None:
        """What the coverage and lexical terms read of the sample under each kind of the space's
        tokenizers, at ``coverage_points`` vocabulary sizes (with 0, none here: each candidate's
        own is measured when it first asks)."""
        self.sample = self.sample_codes(context)
        self.lengths = CoverageModel({}) if self.coverage is not None else None
        if self.lexical:
            assert context.task is not None
            self.names = name_counts(self.sample, context.task.language)
            self.shares = LexicalModel({})
        for kind, vocab in self.measured_vocabularies(context):
            self.measure(kind, vocab, context)
        if self.lengths is not None and self.lengths.lengths:
            summary = ", ".join(f"{kind} {vocab}: {statistics.median(counts):.0f}"
                                for kind, by_vocab in self.lengths.lengths.items()
                                for vocab, counts in by_vocab.items())
            log.info("budget_examples: median tokens of %d unlabeled examples by tokenizer: %s",
                     len(self.sample), summary)
        if self.shares is not None and self.shares.shares:
            summary = ", ".join(f"{kind} {vocab}: {share:.2f}"
                                for kind, by_vocab in self.shares.shares.items()
                                for vocab, share in by_vocab.items())
            log.info("budget_examples: share of %d name occurrences kept whole by tokenizer: %s",
                     sum(self.names.values()), summary)

    def measure(self, kind: str, vocab: int, context: MeterContext) -> None:
        """Load the real tokenizer of ``kind`` and ``vocab`` once and record what each term reads of it."""
        tokenizer = self.tokenizer(kind, vocab, context)
        if self.lengths is not None:
            self.lengths.add(kind, vocab, token_lengths(tokenizer, self.sample))
        if self.shares is not None:
            self.shares.add(kind, vocab, whole_share(tokenizer, self.names))

    def tokenizer(self, kind: str, vocab: int, context: MeterContext) -> Any:
        """The real tokenizer of ``kind`` and ``vocab`` (trained and cached as a student's would be)."""
        from avatar.distill.student import build_tokenizer

        assert context.task is not None and context.cache_dir is not None
        probe = Candidate.from_dict({"tokenizer": kind, "vocab_size": vocab, "max_sequence_length": 512})
        return build_tokenizer(probe, context.task, context.cache_dir,
                               canonical=context.student_canonical_names)

    def lexical_share(self, candidate: Candidate, context: MeterContext) -> float:
        """The share of the sample's name occurrences the candidate's vocabulary keeps whole."""
        assert self.shares is not None
        kind, vocab = str(candidate["tokenizer"]), int(candidate["vocab_size"])
        if not self.coverage_points and not self.shares.has(kind, vocab):
            self.measure(kind, vocab, context)
        return max(self.shares.share(kind, vocab), MIN_SHARE)

    def reading(self, candidate: Candidate, context: MeterContext) -> float:
        """What the candidate reads of an example: the share of its tokens, or the tokens themselves."""
        assert self.lengths is not None
        kind, vocab = str(candidate["tokenizer"]), int(candidate["vocab_size"])
        if not self.coverage_points and not self.lengths.has(kind, vocab):
            self.measure(kind, vocab, context)
        length = int(candidate["max_sequence_length"])
        if self.coverage == "share":
            return self.lengths.coverage(kind, vocab, length)
        return self.lengths.tokens_read(kind, vocab, length)

    def examples(self, candidate: Candidate, context: MeterContext) -> float:
        """The examples the candidate would see within the students' budget, before the cap."""
        rate = (self.speed.examples_per_second(candidate) if self.speed is not None
                else self.meter.measure(candidate, context))
        return rate * budget_seconds(context)

    def cap_of(self, candidate: Candidate) -> float:
        """The examples past which ``candidate`` stops gaining: in a pair task, a student that
        cannot compare the two parts levels off sooner (``comparison_epochs``)."""
        assert self.cap is not None
        if self.comparison_cap is not None and not self.compares(candidate):
            return min(self.cap, self.comparison_cap)
        return self.cap

    def compares(self, candidate: Candidate) -> bool:
        """Two layers (one to match tokens across the pair, one to gather the matches), with attention
        heads at least ``comparison_head_size`` wide (a head tells tokens apart in that many dimensions)."""
        head = int(candidate["hidden_size"]) // int(candidate["num_attention_heads"])
        return int(candidate["num_hidden_layers"]) >= 2 and head >= self.comparison_head_size

    def predict(self, candidate: Candidate, context: MeterContext) -> float:
        seen = self.examples(candidate, context)
        if self.cap is not None:
            seen = min(seen, self.cap_of(candidate))
        # per_token: each example counts its sequence length (the median BigCloneBench pair is
        # 400-700 tokens, so a student at 512 reads more of it than one at 256)
        if self.per_token:
            seen *= int(candidate["max_sequence_length"])
        if self.lengths is not None:
            seen *= self.reading(candidate, context)
        if self.shares is not None:
            seen *= self.lexical_share(candidate, context)
        score = math.log10(seen)
        if self.cap is None:
            return score
        work = float(forward_flops(candidate_vars(candidate, context.num_labels)))
        return score + self.capacity_weight * math.log10(work)


def space_choices(context: MeterContext, name: str) -> tuple[Any, ...]:
    """The space's values of ``name``, or the one every candidate takes when the space fixes it."""
    dimension = context.space.by_name.get(name)
    return dimension.choices if dimension is not None else (DEFAULTS[name],)


def budget_seconds(context: MeterContext) -> float:
    """The students' wall-clock budget, or one line saying it must be a time."""
    if not context.student_seconds:
        raise AvatarError(
            "indicator=budget_examples predicts the examples a student sees within its time budget: "
            "set trainer.max_time (e.g. trainer.max_time=00:00:30:00); with a budget in epochs every "
            "student sees the same examples"
        )
    return float(context.student_seconds)
