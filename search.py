"""Search entry point: ``python search.py task=vuln teacher=graphcodebert``.

Thin on purpose: Hydra composes ``configs/search.yaml``; ``avatar.stages.search`` does
the work in the run directory (``hydra.run.dir``).
"""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from avatar.cli.errors import report_errors


@hydra.main(version_base="1.3", config_path="configs", config_name="search")
def main(cfg: DictConfig) -> None:
    from avatar.stages import search

    run_dir = HydraConfig.get().runtime.output_dir
    report_errors(lambda: search(cfg, run_dir), run_dir=run_dir)


if __name__ == "__main__":
    import sys
    from pathlib import Path

    from avatar.cli.preflight import preflight

    preflight(sys.argv[1:], Path(__file__).resolve().parent / "configs")
    main()
