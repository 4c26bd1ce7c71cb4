"""Search entry point: ``python search.py task=vuln teacher=graphcodebert``.

Thin on purpose: Hydra composes ``configs/search.yaml``; ``avatar.pipeline.search`` does
the work in the run directory (``hydra.run.dir``).
"""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from avatar.cli import report_errors


@hydra.main(version_base="1.3", config_path="configs", config_name="search")
def main(cfg: DictConfig) -> None:
    from avatar.pipeline import search

    run_dir = HydraConfig.get().runtime.output_dir
    report_errors(lambda: search(cfg, run_dir))


if __name__ == "__main__":
    import sys
    from pathlib import Path

    from avatar.preflight import check_config_choices, check_output_dir

    check_output_dir(sys.argv[1:])
    check_config_choices(sys.argv[1:], Path(__file__).resolve().parent / "configs")
    main()
