"""Distillation losses: a registry, each loss checking its own options and what it needs."""

from __future__ import annotations

import pytest
import torch

from avatar.core.errors import AvatarError
from avatar.core.registry import LOSSES
from avatar.distill.settings import DistillSettings
from avatar.learn.losses import HardLabels, KLDivergence, build_loss


def test_auto_picks_kl_with_logits_and_hard_without() -> None:
    assert isinstance(build_loss("auto", True, 2.0), KLDivergence)
    assert isinstance(build_loss("auto", False, 2.0), HardLabels)


def test_a_loss_that_needs_logits_refuses_a_labels_only_teacher() -> None:
    for name in ("kl", "kl_cosine"):
        with pytest.raises(AvatarError, match=f"distill.loss={name} needs teacher logits"):
            build_loss(name, False, 2.0)


def test_each_loss_validates_its_own_options_in_one_line() -> None:
    with pytest.raises(AvatarError, match="temperature must be positive"):
        build_loss("kl", True, 0.0)
    with pytest.raises(AvatarError, match="cosine_weight must be >= 0"):
        build_loss("kl_cosine", True, 2.0, {"cosine_weight": -1})
    with pytest.raises(AvatarError, match="loss 'kl' has no option cosine_weight \\(it takes temperature\\)"):
        build_loss("kl", True, 2.0, {"cosine_weight": 1})
    with pytest.raises(AvatarError, match="unknown loss 'mse'; known losses: hard, kl, kl_cosine"):
        build_loss("mse", True, 2.0)


def test_settings_check_the_loss_before_any_work() -> None:
    with pytest.raises(AvatarError, match="unknown loss"):
        DistillSettings.from_config({"loss": "soft"})
    assert DistillSettings.from_config({"loss": "kl_cosine", "loss_options": {"cosine_weight": 0.5}})


def test_kl_cosine_is_kl_plus_the_cosine_distance_of_the_softened_probabilities() -> None:
    torch.manual_seed(0)
    student, teacher = torch.randn(8, 2), torch.randn(8, 2)
    kl = LOSSES.create("kl", temperature=2.0)(student, teacher)
    both = LOSSES.create("kl_cosine", temperature=2.0, cosine_weight=0.5)(student, teacher)
    functional = torch.nn.functional
    softened = functional.softmax(student / 2, -1), functional.softmax(teacher / 2, -1)
    cosine = (1 - functional.cosine_similarity(*softened, dim=-1)).mean()
    assert float(both) == pytest.approx(float(kl + 0.5 * cosine), rel=1e-5)
    same = LOSSES.create("kl_cosine", temperature=2.0)(teacher, teacher)
    assert float(same) == pytest.approx(0.0, abs=1e-5)
    # a softmax ignores a shift of every logit, so the loss does too (a cosine of logits did not)
    shifted = LOSSES.create("kl_cosine", temperature=2.0)(teacher + 5.0, teacher)
    assert float(shifted) == pytest.approx(0.0, abs=1e-5)


def test_auto_takes_hard_labels_from_a_teacher_undecided_between_two_classes() -> None:
    """Measured: such a teacher's logits taught every student the tie; its hard labels did not."""
    import numpy as np

    from avatar.distill.settings import DistillSettings
    from avatar.distill.train import undecided_teacher
    from avatar.teach.teacher import Knowledge

    tied = np.array([[2.26, -1.33, -1.27], [-2.25, 1.32, 1.27], [-2.07, 1.18, 1.20]] * 10)
    teacher = Knowledge("codelang", "scratch", "", logits=tied)
    assert teacher.undecided_share() == pytest.approx(2 / 3)
    assert undecided_teacher(teacher, DistillSettings(fast=True))
    assert not undecided_teacher(teacher, DistillSettings(fast=True, loss="kl"))  # asked for: kept
    confident = Knowledge("clone", "codebert", "", logits=np.array([[3.0, -3.0], [-2.0, 2.5]] * 10))
    assert confident.undecided_share() == 0.0 and not undecided_teacher(confident, DistillSettings(fast=True))
