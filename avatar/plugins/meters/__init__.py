"""Built-in meters: size, FLOPs, latency, energy and CO2, training throughput."""

from avatar.plugins.meters import energy, flops, latency, size, training  # noqa: F401
