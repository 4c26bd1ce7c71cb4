"""Where work runs: the executors (local, Ray), the run lock, wandb tracking, energy metering."""
