"""The surrogate's encoding, targets and leave-one-out error (the brief runs are covered by
the demo pipeline test, which distils, fits and predicts for real)."""

from __future__ import annotations

import numpy as np
import pytest

from avatar.core.errors import AvatarError
from avatar.plugins.indicators.surrogate import SurrogateIndicator, encode
from avatar.search.regression import REGRESSORS, fit_regressor, leave_one_out_error, mean_predictor_error
from tests.helpers import load_space


def test_encoding_is_fixed_by_the_space_and_in_unit_range() -> None:
    space = load_space("avatar")
    first = encode(space, space.candidate([0] * len(space.dimensions)))
    last = encode(space, space.candidate([len(d) - 1 for d in space.dimensions]))
    assert len(first) == len(last)
    assert min(first + last) >= 0.0 and max(first + last) <= 1.0


def test_targets_headline_or_negated_loss() -> None:
    run = {"metric": 0.7, "val_loss": 0.4}
    assert SurrogateIndicator(target="headline")._target(run) == 0.7
    assert SurrogateIndicator(target="loss")._target(run) == -0.4
    with pytest.raises(AvatarError, match="target must be headline or loss"):
        SurrogateIndicator(target="f2")


@pytest.mark.parametrize("regressor", REGRESSORS)
def test_every_regressor_predicts_a_smooth_signal_better_than_the_mean(regressor: str) -> None:
    rng = np.random.default_rng(0)
    features = rng.random((14, 4))
    targets = features @ np.array([0.3, -0.2, 0.1, 0.0]) + 0.5
    loo = leave_one_out_error(regressor, features, targets)
    assert loo < 0.5 * mean_predictor_error(targets)  # the bar the surrogate is measured against
    if regressor == "ridge":
        assert loo < 0.01  # linear: exact up to its prior


def test_gradient_boosting_sees_an_interaction_the_ridge_cannot() -> None:
    rng = np.random.default_rng(1)
    features = rng.random((24, 2))
    targets = np.where((features[:, 0] > 0.5) & (features[:, 1] > 0.5), 1.0, 0.0)  # an interaction
    assert leave_one_out_error("gbt", features, targets) < leave_one_out_error("ridge", features, targets)


def test_a_fitted_regressor_is_seeded() -> None:
    rng = np.random.default_rng(2)
    features, targets = rng.random((15, 3)), rng.random(15)
    for regressor in REGRESSORS:
        first = fit_regressor(regressor, features, targets, seed=3).predict(features)
        again = fit_regressor(regressor, features, targets, seed=3).predict(features)
        assert np.allclose(first, again)


def test_unknown_regressor_sampling_or_budget_is_one_line() -> None:
    with pytest.raises(AvatarError, match="indicator.regressor must be one of ridge, gbt, gp, got 'svm'"):
        SurrogateIndicator(regressor="svm")
    with pytest.raises(AvatarError, match="indicator.sampling must be one of adaptive, lhs, got 'sobol'"):
        SurrogateIndicator(sampling="sobol")
    with pytest.raises(AvatarError, match="budget_seconds must be a positive number"):
        SurrogateIndicator(budget_seconds=0)


def test_a_wall_clock_budget_gives_every_brief_run_the_same_time() -> None:
    from avatar.search.objectives import MeterContext

    space = load_space("avatar")
    context = MeterContext(space, 2, None, trainer={"accelerator": "cpu"})
    timed = SurrogateIndicator(budget_seconds=60, eval_examples=128)
    options = timed.trainer_options(context)
    assert options["max_time"] == {"seconds": 60.0}
    assert options["max_epochs"] == -1 and options["max_steps"] == -1
    assert options["limit_val_batches"] == 2 and options["accelerator"] == "cpu"
    assert timed.passes_over(249) == 1  # time, not passes, bounds the run
    assert timed._budget()["seconds"] == 60.0  # in the cache key: example-budget runs are not reused
    default = SurrogateIndicator()._budget()
    assert "seconds" not in default and "sampling" not in default  # earlier caches stay valid
    assert SurrogateIndicator(sampling="lhs")._budget()["sampling"] == "lhs"


def test_mean_predictor_error_is_the_error_of_the_other_runs_mean() -> None:
    assert mean_predictor_error(np.array([0.0, 1.0, 2.0])) == pytest.approx((1.5 + 0.0 + 1.5) / 3)
    assert mean_predictor_error(np.array([0.5])) == 0.0  # one run: nothing to compare


def test_a_fixed_brief_run_learning_rate_leaves_it_out_of_the_fit() -> None:
    space = load_space("avatar")
    candidate = space.candidate([0] * len(space.dimensions))
    fixed = SurrogateIndicator(learning_rate=1e-3)
    assert fixed.fixed == frozenset({"learning_rate"})
    assert len(encode(space, candidate, fixed.fixed)) == len(encode(space, candidate)) - 1
    assert fixed._budget()["learning_rate"] == 1e-3  # in the cache key: other-lr runs are not reused
    own = SurrogateIndicator(learning_rate=None)
    assert "learning_rate" not in own._budget()  # caches made before the option stay valid


def test_brief_runs_on_a_small_split_see_train_examples_over_several_passes() -> None:
    from avatar.plugins.indicators.surrogate import SurrogateIndicator

    indicator = SurrogateIndicator(train_examples=2000)
    assert indicator.passes_over(249) == 9  # a 750-snippet task's unlabeled third
    assert indicator.passes_over(90_000) == 1  # BigCloneBench: one pass, as before
    assert SurrogateIndicator(max_steps=80).passes_over(249) == 1  # a step budget is kept


def test_the_search_holds_the_learning_rate_the_brief_runs_measured() -> None:
    from avatar.core.registry import METERS
    from avatar.search.objectives import Objectives

    space = load_space("tiny")  # learning_rate: [1e-3, 5e-4]
    objectives = Objectives(SurrogateIndicator(learning_rate=1e-3), [METERS.create("size_mb")])
    held = objectives.measured_space(space)
    assert held.by_name["learning_rate"].choices == (1e-3,)
    assert [d.choices for d in held.dimensions if d.name != "learning_rate"] == \
        [d.choices for d in space.dimensions if d.name != "learning_rate"]
    own_rates = Objectives(SurrogateIndicator(learning_rate=None), []).measured_space(space)
    assert own_rates.by_name["learning_rate"].choices == (1e-3, 5e-4)
    absent = Objectives(SurrogateIndicator(learning_rate=2e-3), []).measured_space(space)
    assert absent.by_name["learning_rate"].choices == (1e-3, 5e-4)  # a value the space lacks: left
