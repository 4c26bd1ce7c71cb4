"""The models a surrogate indicator can fit: from an encoded configuration to a brief run's score.

Why three: the issue's question is which one ranks candidates best from a few dozen
noisy runs, and each fails differently. A Bayesian ridge (the paper's) is linear in the
features, so it extrapolates but cannot see interactions (a wide layer helps only with
enough steps); gradient-boosted trees (MORPH's choice) see interactions but predict a
constant outside the sampled range; a Gaussian process with one length scale per feature
interpolates smoothly and learns which features matter, at a cubic cost that is nothing at
20 runs. All three come from scikit-learn and are refitted from the cached runs on every
preparation, so no fitted object is ever cached or unpickled.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from avatar.core.errors import AvatarError

REGRESSORS = ("ridge", "gbt", "gp")


def check_regressor(name: str) -> str:
    if name not in REGRESSORS:
        raise AvatarError(f"indicator.regressor must be one of {', '.join(REGRESSORS)}, got {name!r}")
    return name


def build_regressor(name: str, features: int, seed: int = 0) -> Any:
    """An unfitted scikit-learn regressor for ``features`` input columns."""
    check_regressor(name)
    if name == "ridge":
        from sklearn.linear_model import BayesianRidge

        return BayesianRidge()
    if name == "gbt":
        from sklearn.ensemble import GradientBoostingRegressor

        # shallow trees and a small step: a few dozen runs overfit anything deeper
        return GradientBoostingRegressor(n_estimators=150, max_depth=2, learning_rate=0.05, subsample=0.8,
                                         min_samples_leaf=2, random_state=seed)
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    kernel = (ConstantKernel(1.0, (1e-3, 1e3)) * Matern(np.ones(max(features, 1)), (1e-2, 1e2), nu=2.5)
              + WhiteKernel(1e-2, (1e-6, 1e0)))
    return GaussianProcessRegressor(kernel=kernel, normalize_y=True, n_restarts_optimizer=2,
                                    random_state=seed)


def fit_regressor(name: str, features: np.ndarray, targets: np.ndarray, seed: int = 0) -> Any:
    """``build_regressor`` fitted, with the optimiser's convergence warnings silenced (a GP on
    20 points often stops at a bound of its length scales; that is an answer, not an error)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    model = build_regressor(name, features.shape[1], seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(features, targets)


def leave_one_out_error(name: str, features: np.ndarray, targets: np.ndarray, seed: int = 0) -> float:
    """Mean absolute error of predicting each run from a model fitted on the others."""
    errors = []
    for i in range(len(targets)):
        mask = np.arange(len(targets)) != i
        model = fit_regressor(name, features[mask], targets[mask], seed)
        errors.append(abs(float(model.predict(features[i : i + 1])[0]) - targets[i]))
    return float(np.mean(errors))


def mean_predictor_error(targets: np.ndarray) -> float:
    """Leave-one-out MAE of predicting each run by the mean of the others: the bar to beat."""
    n = len(targets)
    if n < 2:
        return 0.0
    return float(np.mean([abs((targets.sum() - t) / (n - 1) - t) for t in targets]))


def linear_summary(model: Any) -> dict[str, Any]:
    """What a fitted model shows a reader in surrogate.json: a ridge's coefficients, a tree
    ensemble's feature importances, a GP's kernel."""
    if hasattr(model, "coef_"):
        return {"coef": [float(c) for c in model.coef_], "intercept": float(model.intercept_)}
    if hasattr(model, "feature_importances_"):
        return {"feature_importances": [float(c) for c in model.feature_importances_]}
    return {"kernel": str(getattr(model, "kernel_", ""))}
