"""Built-in meters: size, FLOPs, latency, energy and CO2, training throughput."""
