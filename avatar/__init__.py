"""Avatar: a large language model of code turned into a tiny, green, task-specific model.

The pipeline's stages are the subpackages, lowest first: ``core`` (errors, files, plugin
registries), ``task``, ``code`` (parsing, data flow, metamorphic transforms), ``learn`` (the
LightningModule and Trainer every model trains with), ``run`` (executors, tracking, energy),
``teach`` (stage 1), ``search`` (space, z3, objectives, evolution), ``distill``, ``report``,
``cli``; ``stages`` alone reads the Hydra configuration.
"""

from importlib import metadata

try:
    __version__ = metadata.version("avatar")
except metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
