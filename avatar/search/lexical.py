"""How many of the code's names a candidate's vocabulary holds whole: the lexical term of ``budget_examples``.

Why: on BigCloneBench the same 2-layer student at 30 minutes reached 0.8848 with a BPE
vocabulary of 2,000 and 0.8310 with 1,000 (docs/benchmarks.md, "What the whole-space picks
lack"). A vocabulary barely past BPE's 256 bytes cuts an identifier into near-character pieces,
and a small student must learn to put them back together before it can compare two functions
by their names. The examples a student sees and the share of each it reads do not see this, and
the whole-space search kept picking such vocabularies (they free the 3 MiB for width). This
module measures it: the share of the task's identifier occurrences that the tokenizer encodes,
on its own after a space, as one known token (an unknown token counts as not whole: a Word
vocabulary reads every rare name as the same token).

Like the coverage term, a search does not train a tokenizer for every vocabulary it visits:
each kind's share is measured at a few vocabulary sizes with real tokenizers and interpolated
linearly in log vocabulary between them (measured on BigCloneBench: BPE keeps 0.34, 0.50, 0.65,
0.69 and 0.86 of the occurrences whole at 1,000, 2,000, 5,000, 7,000 and 46,000).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from avatar.code.parsing import RULES, SUPPORTED_LANGUAGES, leaves, parse
from avatar.core.errors import AvatarError
from avatar.search.coverage import between
from avatar.task.base import Code

IDENTIFIER_LEAVES = frozenset({"identifier", "type_identifier", "field_identifier"})
"""The tree-sitter leaves that are names (C and Java)."""
WORD = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
"""A name in a language without a grammar here: every identifier-like word (keywords too)."""


def names(code: str, language: str) -> list[str]:
    """The identifier occurrences of ``code`` in order: the parse tree's name leaves where the
    language is parsed here (C, Java), otherwise every identifier-like word."""
    if language not in SUPPORTED_LANGUAGES:
        return WORD.findall(code)
    tree = parse(code, language)
    return [text for node, text in leaves(tree.root_node, RULES[language].atomic)
            if node.type in IDENTIFIER_LEAVES]


def name_counts(codes: Iterable[Code], language: str) -> Counter[str]:
    """Occurrences of each name over ``codes`` (both snippets of a pair)."""
    counts: Counter[str] = Counter()
    for code in codes:
        for snippet in ((code,) if isinstance(code, str) else code):
            counts.update(names(snippet, language))
    if not counts:
        raise AvatarError("the lexical term found no identifier in the sampled examples")
    return counts


def whole_share(tokenizer: object, counts: Mapping[str, int]) -> float:
    """The share of name occurrences ``tokenizer`` encodes, after a space, as one known token."""
    distinct = list(counts)
    encoded = tokenizer([" " + name for name in distinct], add_special_tokens=False,  # type: ignore[operator]
                        verbose=False)["input_ids"]
    unknown = getattr(tokenizer, "unk_token_id", None)
    whole = sum(counts[name] for name, ids in zip(distinct, encoded, strict=True)
                if len(ids) == 1 and ids[0] != unknown)
    return whole / sum(counts.values())


@dataclass(frozen=True)
class LexicalModel:
    """The whole share of each (kind, vocabulary) measured; the others interpolated."""

    shares: dict[str, dict[int, float]]

    def has(self, kind: str, vocab_size: int) -> bool:
        return vocab_size in self.shares.get(kind, {})

    def add(self, kind: str, vocab_size: int, share: float) -> None:
        self.shares.setdefault(kind, {})[vocab_size] = share

    def share(self, kind: str, vocab_size: int) -> float:
        """Measured, or linear in log vocabulary between the nearest measured sizes (held at the ends)."""
        measured = self.shares.get(kind)
        if not measured:
            raise AvatarError(f"the lexical term has no measured tokenizer of kind {kind!r}; "
                              f"measured: {sorted(self.shares)}")
        lower, upper, weight = between(sorted(measured), vocab_size)
        return (1 - weight) * measured[lower] + weight * measured[upper]
