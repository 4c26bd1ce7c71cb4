"""Built-in task plugins; importing this package registers them in ``avatar.core.registry.TASKS``."""

from avatar.plugins.tasks import clone, demo, vuln  # noqa: F401  (registration side effect)
