"""The one text normaliser every model input goes through, and the one test of "no code".

Whitespace is collapsed to single spaces (``" ".join(code.split())``), as CodeXGLUE's
fine-tuning scripts and the paper's authors did. The students' tokenizers are trained on
code normalised this way, the teachers are fine-tuned on it, and ``avatar.report.predict`` feeds
it at inference, so layout never changes a prediction. Kept free of heavy imports: the
ONNX prediction path uses it without torch or transformers.
"""

from __future__ import annotations


def normalize_code(code: str) -> str:
    """Collapse every run of whitespace to one space and strip the ends."""
    return " ".join(code.split())


def has_code(text: str) -> bool:
    """Whether ``text`` holds at least one visible character: something a tokenizer can read as code.

    Why not ``text.strip()``: a snippet of control characters (``"\\x00\\x01\\n"``, a lone
    ``"\\u0000"`` in a jsonl field) or of format characters (a byte-order mark, zero-width
    spaces) strips to something non-empty, yet holds no code, and a classifier would give it a
    confident-looking label that means nothing. ``str.isprintable`` is false for exactly the
    Unicode categories "Other" (Cc, Cf, Cs, Co, Cn) and "Separator" (Zs, Zl, Zp), except the
    ASCII space, which ``isspace`` rules out. Stops at the first visible character, so it
    costs nothing on real code.
    """
    return any(char.isprintable() and not char.isspace() for char in text)
