"""Built-in effectiveness indicators."""

from avatar.plugins.indicators import flops  # noqa: F401
