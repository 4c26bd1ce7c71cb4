"""Console commands and the one path from an error to an exit code."""
