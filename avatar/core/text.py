"""The one text normaliser every model input goes through.

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
