"""Built-in effectiveness indicators."""

from avatar.plugins.indicators import flops, surrogate  # noqa: F401
