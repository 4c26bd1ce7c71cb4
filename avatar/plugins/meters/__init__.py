"""Built-in meters: size, FLOPs, latency."""

from avatar.plugins.meters import flops, latency, size  # noqa: F401
