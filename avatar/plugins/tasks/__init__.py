"""Built-in task plugins; importing this package registers them in ``avatar.core.registry.TASKS``."""
