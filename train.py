"""Training entry point: ``python train.py stage=teacher|distill ...``.

Thin on purpose: Hydra composes ``configs/train.yaml``; ``avatar.stages.train``
dispatches to the stage's module in the run directory.
"""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from avatar.cli import report_errors


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> None:
    from avatar.stages import train

    run_dir = HydraConfig.get().runtime.output_dir
    report_errors(lambda: train(cfg, run_dir), run_dir=run_dir)


if __name__ == "__main__":
    import sys

    from avatar.preflight import check_output_dir, check_trainer_overrides

    check_output_dir(sys.argv[1:])
    check_trainer_overrides(sys.argv[1:])
    main()
