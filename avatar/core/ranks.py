"""Which process of a distributed training this is, read from the environment.

Why a module of its own: the run lock and the cache locks must know it before any Trainer
exists (a DDP child re-runs the whole command, and must neither take the run's lock nor
wait on a cache lock its own rank 0 holds), and they should not import Lightning for it.
"""

from __future__ import annotations

import os


def distributed_rank() -> int:
    """This process's global rank when a distributed launcher started it, else 0.

    Lightning's DDP children (``LOCAL_RANK``, ``NODE_RANK``), torchrun (``RANK``) and SLURM
    (``SLURM_PROCID``) say so in the environment.
    """
    env = os.environ
    for key in ("RANK", "SLURM_PROCID"):
        if env.get(key, "").isdigit():
            return int(env[key])
    return int(env.get("NODE_RANK", "0") or 0) + int(env.get("LOCAL_RANK", "0") or 0)
