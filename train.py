"""Training entry point: ``python train.py stage=teacher|distill ...``.

Thin on purpose: Hydra composes ``configs/train.yaml``; ``avatar.stages.train``
dispatches to the stage's module in the run directory.
"""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from avatar.cli.errors import report_errors


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> None:
    from avatar.stages import train

    run_dir = HydraConfig.get().runtime.output_dir
    report_errors(lambda: train(cfg, run_dir), run_dir=run_dir)


if __name__ == "__main__":
    import sys
    from pathlib import Path

    from avatar.cli.preflight import preflight

    preflight(sys.argv[1:], Path(__file__).resolve().parent / "configs")
    main()
