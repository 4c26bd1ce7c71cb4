"""Built-in transforms: metamorphic, semantics-preserving rewrites of functions (``rename``)."""

from avatar.plugins.transforms import rename  # noqa: F401
