"""``rename``: parameters, locals and the function's own name get fresh, real-looking names."""

from __future__ import annotations

from random import Random

from avatar.code.rename import rename_identifiers
from avatar.code.transform import Outcome, Transform
from avatar.core.registry import TRANSFORMS


@TRANSFORMS.register("rename")
class RenameTransform(Transform):
    """Consistent, scope-aware renaming (``avatar.code.rename``); new names come from ``names``.

    Skips (None) when the engine cannot vouch for the copy; a function with nothing to
    rename is its own copy (unchanged).
    """

    name = "rename"

    def outcome(self, code: str, rng: Random) -> Outcome:
        result = rename_identifiers(code, self.language, self.names, rng)
        return Outcome(result.status, result.code, result.reason)

    def apply(self, code: str, rng: Random) -> str | None:
        return self.outcome(code, rng).code
