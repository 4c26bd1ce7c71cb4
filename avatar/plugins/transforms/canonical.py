"""``canonical``: every renamable name replaced by its canonical one (``fa``, ``va``, ``vb`` ...).

Not a metamorphic copy for testing but a normal form for reading: a student trained and run
on canonical names (``distill.canonical_names``) sees the same input for a function and for
any consistent renaming of it, so renaming cannot change its answer.
"""

from __future__ import annotations

from random import Random

from avatar.code.rename import canonical_identifiers
from avatar.code.transform import Outcome, Transform
from avatar.core.registry import TRANSFORMS


@TRANSFORMS.register("canonical")
class CanonicalTransform(Transform):
    """Deterministic: ``rng`` and the name pool are not used. Skips (None) where the renaming
    engine cannot vouch for the result, as ``rename`` does."""

    name = "canonical"

    def outcome(self, code: str, rng: Random) -> Outcome:
        result = canonical_identifiers(code, self.language)
        if result.code is None:
            return Outcome("skipped", None, result.reason)
        return Outcome("changed" if result.code != code else "unchanged", result.code, result.reason)

    def apply(self, code: str, rng: Random) -> str | None:
        return self.outcome(code, rng).code
