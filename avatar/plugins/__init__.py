"""Built-in plugins; importing this package registers them (see ``avatar.registry``)."""

from avatar.plugins import constraints, indicators, meters, tasks, teachers, transforms  # noqa: F401
