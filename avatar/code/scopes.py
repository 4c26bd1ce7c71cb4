"""Scope analysis of one C or Java function: which identifier occurrences are its own names.

``analyse_scopes`` runs the language's walker (``java_scopes``, ``c_scopes``, over the
language-free ``scope_walker``) and adds what only the text shows (C preprocessor lines).
The analysis never changes code; ``avatar.code.rename`` decides what to rename from it.
"""

from __future__ import annotations

import re

from tree_sitter import Node

from avatar.code.c_scopes import _CWalker
from avatar.code.java_scopes import _JavaWalker
from avatar.code.scope_walker import WORD, Binding, ScopeAnalysis, _Walker, is_macro_like

__all__ = ["WORD", "Binding", "ScopeAnalysis", "analyse_scopes", "directive_words", "is_macro_like"]


_DIRECTIVE = re.compile(rb"^[ \t]*#(?:[^\n]*\\\r?\n)*[^\n]*", re.MULTILINE)


def directive_words(source: bytes) -> set[str]:
    """Every word on a C preprocessor line (continuation lines included), wherever it is.

    Read from the text, not the tree: a directive inside a parse error or a skipped
    subtree still counts, and a name a directive mentions is never renamed anywhere.
    """
    words: set[str] = set()
    for match in _DIRECTIVE.finditer(source):
        words.update(WORD.findall(match.group().decode("utf-8", errors="replace")))
    return words


def analyse_scopes(root: Node, source: bytes, language: str) -> ScopeAnalysis:
    """Bindings, free names and unsafe texts of the snippet parsed as ``root`` from ``source``.

    May raise ``RecursionError`` on absurdly deep trees; callers treat that as "skip".
    """
    walker: _Walker = _JavaWalker(source) if language == "java" else _CWalker(source)
    if language == "c":
        walker.unsafe.update(directive_words(source))
    walker.visit(root)
    # Handlers skip children they know to be no variables (a called method's name, a type);
    # an ERROR node may hide among those, so every error's words are unsafe, wherever it is.
    stack = [root] if root.has_error else []
    while stack:
        node = stack.pop()
        if node.type == "ERROR":
            walker.mark_unsafe(node)
        else:
            stack.extend(c for c in node.children if c.has_error)
    return walker.result()
