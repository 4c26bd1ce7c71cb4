"""Built-in teacher plugins; importing this package registers them in ``avatar.core.registry.TEACHERS``."""
