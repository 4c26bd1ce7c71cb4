"""Built-in distillation losses beyond ``kl`` and ``hard`` (``avatar.learn.losses``)."""
