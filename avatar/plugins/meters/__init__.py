"""Built-in meters: size, FLOPs, latency."""

from avatar.plugins.meters import energy, flops, latency, size  # noqa: F401
