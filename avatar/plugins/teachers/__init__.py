"""Built-in teacher plugins; importing this package registers them in ``avatar.core.registry.TEACHERS``."""

from avatar.plugins.teachers import huggingface, predictions, scratch  # noqa: F401  (registration side effect)
