"""Built-in constraint plugins: each adds one z3 assertion over the space."""

from avatar.plugins.constraints import flops, heads, size  # noqa: F401
