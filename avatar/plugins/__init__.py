"""Built-in plugins; importing this package registers them (see ``avatar.core.registry``)."""

from avatar.plugins import constraints, indicators, meters, tasks, teachers  # noqa: F401
