"""The budget_examples indicator: real training steps of untrained students, times the students' budget."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from avatar.core.errors import AvatarError
from avatar.core.registry import CONSTRAINTS, INDICATORS, TASKS
from avatar.search.coverage import CoverageModel, calibration_vocabularies
from avatar.search.objectives import MeterContext, Objectives
from avatar.search.smt import Pruner
from avatar.search.speed import SpeedModel, features, leave_one_out_errors
from avatar.teach.teacher import Knowledge
from tests.helpers import TINY_STUDENT, Copies, demo_search_context, load_space

BASE = TINY_STUDENT


def test_more_work_per_example_predicts_fewer_examples_and_the_budget_scales_it(tmp_path) -> None:
    space = load_space("tiny")
    context = MeterContext(space, 2, str(tmp_path), student_seconds=600.0)
    indicator = INDICATORS.create("budget_examples", runs=2)
    indicator.prepare(context)
    light = indicator.predict(space.validate(BASE), context)
    heavy = indicator.predict(space.validate({**BASE, "num_hidden_layers": 4, "hidden_size": 96,
                                              "intermediate_size": 384}), context)
    assert math.isfinite(light) and light > heavy
    # the measurement is meters=trainable's, kept in the run directory: a resumed search re-measures nothing
    assert len(json.loads((tmp_path / "train_speed_cache.json").read_text())) == 2
    longer = MeterContext(space, 2, str(tmp_path), student_seconds=6000.0)
    assert indicator.predict(space.validate(BASE), longer) == pytest.approx(light + 1.0)


def test_a_budget_in_epochs_is_one_clear_line() -> None:
    indicator = INDICATORS.create("budget_examples")
    with pytest.raises(AvatarError, match="set trainer.max_time"):
        indicator.prepare(MeterContext(load_space("tiny"), 2))


def test_the_speed_model_recovers_a_linear_time_and_reports_its_leave_one_out_error() -> None:
    space = load_space("tiny")
    candidates = [space.validate({**BASE, "num_hidden_layers": layers, "batch_size": batch})
                  for layers in (1, 2, 3) for batch in (16, 32)]
    seconds = [0.002 + 0.0005 * features(c, 2)[1] for c in candidates]  # an exactly linear machine
    model = SpeedModel.fit(candidates, [1 / s for s in seconds], 2)
    assert (model.overhead, model.per_mb) == pytest.approx((0.002, 0.0005))
    assert np.allclose(leave_one_out_errors(candidates, [1 / s for s in seconds], 2), 0, atol=1e-9)
    with pytest.raises(AvatarError, match="at least 2 measured candidates"):
        SpeedModel.fit(candidates[:1], [10.0], 2)


def test_calibrated_and_capped_it_measures_a_sample_and_past_the_cap_prefers_more_work(tmp_path) -> None:
    space = load_space("tiny")
    pruner = Pruner(space, [CONSTRAINTS.create("size", max_mb=1.0)], num_labels=2, seed=0)
    knowledge = Knowledge("demo", "t", "f", logits=np.zeros((100, 2)))
    context = MeterContext(space, 2, str(tmp_path), pruner=pruner, knowledge=lambda: knowledge,
                           student_seconds=600.0)
    indicator = INDICATORS.create("budget_examples", runs=1, calibration=3, saturation_epochs=2.0,
                                  learning_rate=1e-3)
    indicator.prepare(context)
    assert len(json.loads((tmp_path / "train_speed_cache.json").read_text())) == 3  # the sample only
    assert indicator.cap == 200 and indicator.fixed_choices == {"learning_rate": 1e-3}
    light = space.validate(BASE)
    heavy = space.validate({**BASE, "num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128})
    # ten minutes is far past two passes over 100 examples for both: the one with more work per example wins
    assert indicator.examples(light, context) > indicator.examples(heavy, context) > 200
    assert indicator.predict(heavy, context) > indicator.predict(light, context)
    assert len(json.loads((tmp_path / "train_speed_cache.json").read_text())) == 3  # predicted, not measured
    # per_token counts what the student reads of each example: its sequence length (the same speeds, cached)
    tokens = INDICATORS.create("budget_examples", runs=1, calibration=3, saturation_epochs=2.0,
                               per_token=True)
    tokens.prepare(context)
    expected = indicator.predict(light, context) + math.log10(128)
    assert tokens.predict(light, context) == pytest.approx(expected)
    # the batch is held like the learning rate, and the capacity weight scales the work term alone
    held = INDICATORS.create("budget_examples", runs=1, calibration=3, saturation_epochs=2.0,
                             learning_rate=1e-3, batch_size=16, capacity_weight=0.2)
    held.prepare(context)
    assert held.fixed_choices == {"learning_rate": 1e-3, "batch_size": 16}
    gap = indicator.predict(heavy, context) - indicator.predict(light, context)
    assert held.predict(heavy, context) - held.predict(light, context) == pytest.approx(20 * gap)
    with pytest.raises(AvatarError, match="indicator.batch_size must be a positive integer"):
        INDICATORS.create("budget_examples", batch_size=0)
    with pytest.raises(AvatarError, match="indicator.capacity_weight must be >= 0"):
        INDICATORS.create("budget_examples", capacity_weight=-1)


def test_the_coverage_model_interpolates_each_example_in_log_log_and_keeps_the_truncated_share() -> None:
    lengths = {"BPE": {1000: np.array([800.0, 200.0]), 4000: np.array([200.0, 50.0])}}
    model = CoverageModel(lengths)
    # halfway in log between 1000 and 4000: the geometric mean of each example's two lengths
    assert model.lengths_for("BPE", 2000) == pytest.approx([400.0, 100.0])
    assert model.lengths_for("BPE", 500) is lengths["BPE"][1000]  # held at the measured ends
    assert model.coverage("BPE", 2000, 200) == pytest.approx((0.5 + 1.0) / 2)
    assert model.tokens_read("BPE", 2000, 200) == pytest.approx((200 + 100) / 2)
    with pytest.raises(AvatarError, match="measured: \\['BPE'\\]"):
        model.coverage("Unigram", 1000, 256)
    assert calibration_vocabularies(range(1000, 46001, 1000), 3) == [1000, 7000, 46000]
    assert calibration_vocabularies([1000, 2000], 3) == [1000, 2000]


def test_coverage_measures_real_tokenizers_and_ranks_the_longer_reader_higher(tmp_path) -> None:
    context = demo_search_context(tmp_path)
    space = context.space
    plain = INDICATORS.create("budget_examples", runs=1)
    share = INDICATORS.create("budget_examples", runs=1, coverage="share", coverage_points=2,
                              coverage_examples=40)
    plain.prepare(context)
    share.prepare(context)
    assert sorted(share.lengths.lengths["WordPiece"]) == [1000, 4000]  # two measured sizes per kind
    assert len([p for p in (tmp_path / "cache" / "tokenizers").glob("*/*_v*") if p.is_dir()]) == 4  # cached
    short = space.validate({**BASE, "max_sequence_length": 64})
    reads = share.reading(short, context)
    assert 0 < reads <= 1
    assert share.predict(short, context) == pytest.approx(plain.predict(short, context) + math.log10(reads))
    longer = space.validate({**BASE, "max_sequence_length": 128})
    assert share.reading(longer, context) >= reads
    exact = INDICATORS.create("budget_examples", runs=1, coverage="tokens", coverage_points=0,
                              coverage_examples=40)
    exact.prepare(context)
    assert exact.lengths.lengths == {}  # nothing trained until a candidate asks
    assert 0 < exact.reading(short, context) <= 64
    with pytest.raises(AvatarError, match="indicator.coverage must be one of"):
        INDICATORS.create("budget_examples", coverage="all")


def test_dropout_is_held_at_the_spaces_lowest_or_a_rate_it_offers() -> None:
    space = load_space("tiny")
    lowest = Objectives(INDICATORS.create("budget_examples", dropout="lowest"), []).measured_space(space)
    for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        assert lowest.by_name[name].choices == (0.1,)
    rate = Objectives(INDICATORS.create("budget_examples", dropout=0.2), []).measured_space(space)
    assert rate.by_name["hidden_dropout_prob"].choices == (0.2,)
    own = Objectives(INDICATORS.create("budget_examples"), []).measured_space(space)
    assert own.by_name["hidden_dropout_prob"].choices == (0.1, 0.2)
    with pytest.raises(AvatarError, match="indicator.dropout must be 'lowest', a rate"):
        INDICATORS.create("budget_examples", dropout="highest")


def test_students_that_cannot_compare_a_pairs_parts_level_off_sooner(tmp_path) -> None:
    space = load_space("tiny")
    knowledge = Knowledge("copies", "t", "f", logits=np.zeros((100, 2)))
    context = MeterContext(space, 2, str(tmp_path), task=Copies(size=20), knowledge=lambda: knowledge,
                           student_seconds=600.0)
    indicator = INDICATORS.create("budget_examples", runs=1, saturation_epochs=2.0, comparison_epochs=0.5)
    indicator.prepare(context)
    one, two = space.validate(BASE), space.validate({**BASE, "num_hidden_layers": 2})
    assert indicator.cap_of(one) == 50 and indicator.cap_of(two) == 200
    # with a head size, two layers whose heads are too narrow to tell tokens apart level off too
    heads = INDICATORS.create("budget_examples", runs=1, saturation_epochs=2.0, comparison_epochs=0.5,
                              comparison_head_size=32)
    heads.prepare(context)
    wide = space.validate({**BASE, "num_hidden_layers": 2, "hidden_size": 64})
    assert heads.cap_of(two) == 50 and heads.cap_of(wide) == 200  # 32 / 2 heads = 16; 64 / 2 = 32
    # one snippet per example: nothing to compare, one cap for all
    single = MeterContext(space, 2, str(tmp_path), task=TASKS.create("demo", size=20),
                          knowledge=lambda: knowledge, student_seconds=600.0)
    indicator.prepare(single)
    assert indicator.cap_of(one) == 200
    with pytest.raises(AvatarError, match="indicator.comparison_epochs must be > 0 or null"):
        INDICATORS.create("budget_examples", comparison_epochs=0.5)
    with pytest.raises(AvatarError, match="indicator.comparison_head_size must be an integer >= 0"):
        INDICATORS.create("budget_examples", comparison_head_size=-1)
