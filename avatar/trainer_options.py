"""A type check of the ``trainer`` group before any work starts.

Why: the ``trainer`` group is handed to ``lightning.Trainer`` as keywords, and Lightning
checks them only when a Trainer is built: after the teacher's knowledge, the z3 pruning,
the search and perhaps hours of surrogate runs, ``trainer.max_epochs=abc`` would end in a
traceback deep inside Lightning. Only the numeric and boolean keys are checked here (the
others, such as ``accelerator`` or ``precision``, take strings Lightning knows best).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from avatar.errors import AvatarError

INTEGER_KEYS: frozenset[str] = frozenset({
    "max_epochs", "min_epochs", "max_steps", "min_steps", "log_every_n_steps", "accumulate_grad_batches",
    "num_sanity_val_steps", "num_nodes", "check_val_every_n_epoch", "reload_dataloaders_every_n_epochs",
})
"""Lightning keys that take a whole number (``None`` allowed: Lightning's default)."""

NUMBER_KEYS: frozenset[str] = frozenset({
    "limit_train_batches", "limit_val_batches", "limit_test_batches", "limit_predict_batches",
    "val_check_interval", "overfit_batches", "gradient_clip_val",
})
"""Lightning keys that take an int (batches) or a float (a fraction, a norm)."""

BOOLEAN_KEYS: frozenset[str] = frozenset({
    "enable_progress_bar", "enable_checkpointing", "enable_model_summary", "benchmark", "inference_mode",
    "use_distributed_sampler", "detect_anomaly", "barebones", "sync_batchnorm",
})


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


CHECKS: tuple[tuple[frozenset[str], Any, str], ...] = (
    (INTEGER_KEYS, _is_integer, "an integer"),
    (NUMBER_KEYS, _is_number, "a number"),
    (BOOLEAN_KEYS, lambda value: isinstance(value, bool), "true or false"),
)


def check_trainer_options(options: Mapping[str, Any] | None) -> None:
    """Raise ``AvatarError`` naming the first ``trainer.<key>`` whose value has the wrong type.

    ``None`` values pass (Lightning's own default); unknown keys pass (Lightning checks them).
    """
    for key, value in (options or {}).items():
        if value is None:
            continue
        for keys, accepts, expected in CHECKS:
            if key in keys and not accepts(value):
                raise AvatarError(f"trainer.{key} must be {expected}, got {value!r} ({type(value).__name__})")
