"""Built-in code transforms: semantics-preserving rewrites (``rename``); registry ``TRANSFORMS``."""
