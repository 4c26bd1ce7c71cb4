"""Rename a function's parameters, locals and own name consistently: a metamorphic copy.

``rename_identifiers(code, language, names, rng)`` returns a ``RenameResult``:

* ``changed``: ``code`` holds the renamed copy, ``renames`` the old -> new names;
* ``unchanged``: the function declares nothing that can be renamed safely (no parameters
  or locals, or all of them sit where their role is unknown, e.g. macro arguments). The
  original *is* a valid metamorphic copy of itself, so ``code`` is the original text. This
  is kept apart from ``skipped`` so that coverage reports say how often the engine gave
  up, not how often there was nothing to do;
* ``skipped``: the engine cannot vouch for a copy (``code`` is None, ``reason`` says why):
  the snippet is mostly unparseable, nests too deeply, no fresh name was left, or the
  final check refused the result. A function is never changed silently.

What is renamed (see ``avatar.code.scopes`` for how occurrences are found): the
function/method name with its recursive calls by the bare name (Java: also ``this.f(..)``)
and every parameter and local (for, catch, lambda, resource, pattern variables), scope by
scope. Never renamed: fields and members, types, other functions and methods, library
names, labels, keywords, macros and any name that occurs inside a preprocessor directive,
a macro's bare argument, an annotation, inline assembly or a parse error. Comments and
literals are never touched: only identifier tokens are rewritten, by byte span.

New names come from ``mine_identifiers`` (real local names of the task's training code),
drawn with the caller's ``random.Random``: one new name per old name (so shadowing and
sibling scopes keep their shape), none equal to any word already in the function, to a
keyword, or to another new name -- so a new name can never capture another reference.

Every result is re-checked by ``check_rename``: the copy must parse with no more errors
(ERROR/MISSING nodes) than the original, into the same tree, with the same tokens and the
same text between them everywhere except at identifiers whose old -> new pair is one of
the renames. Known limit: a C macro whose *definition* (outside the snippet) uses a local
by name would see the old name; that cannot be known from the function alone.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from random import Random
from typing import Literal

from tree_sitter import Node

from avatar.code.parsing import parser_for
from avatar.code.rename_check import _check, _decode, _encode, _errors, _parse, language_keywords
from avatar.code.scopes import WORD, Binding, ScopeAnalysis, analyse_scopes, is_macro_like

Status = Literal["changed", "unchanged", "skipped"]

# Deep else-if chains nest the tree deeply; the scope walk recurses (as avatar.code.dataflow's).
_RECURSION_LIMIT = 20_000
# A snippet whose parse errors cover more than this share of its bytes is not analysed.
_MAX_ERROR_SHARE = 0.5
# A mined name is dropped when it is used undeclared in at least 1/_FREE_RATIO as many
# functions as it is declared in (C `env`: 1,093 declarations, 126 undeclared uses).
_FREE_RATIO = 20
_POOL_NAME = re.compile(r"[a-z][A-Za-z0-9_]{0,39}")

@dataclass(frozen=True)
class Rename:
    """One renamed name: ``kind`` is ``variable`` (parameters, locals), ``function`` or ``method``."""

    old: str
    new: str
    kind: str


@dataclass(frozen=True)
class RenameResult:
    """The outcome of ``rename_identifiers``; ``code`` is None exactly when ``status == "skipped"``."""

    status: Status
    code: str | None
    renames: tuple[Rename, ...] = ()
    reason: str = ""

    @property
    def mapping(self) -> dict[str, str]:
        """Old -> new variable names (the function or method name is in ``renames`` too)."""
        return {r.old: r.new for r in self.renames if r.kind == "variable"}


def _skip(reason: str) -> RenameResult:
    return RenameResult("skipped", None, (), reason)


# ---------------------------------------------------------------------------------------
# Parsing helpers


def _unclosed_braces(root: Node) -> int:
    """``{`` tokens minus ``}`` tokens (literals and comments are whole leaves, so not counted)."""
    opened = closed = 0
    stack = [root]
    while stack:
        node = stack.pop()
        if node.child_count == 0:
            if node.end_byte > node.start_byte:
                opened += node.type == "{"
                closed += node.type == "}"
        else:
            stack.extend(node.children)
    return opened - closed


def _analysis_tree(source: bytes, root: Node, language: str) -> tuple[bytes, Node]:
    """The tree to analyse scopes on: the original, or, for a snippet cut short of its
    closing braces (common in Devign), the snippet with them appended. Appending at the end
    moves no byte offset, so spans found in the repaired tree index the original too; the
    final check still compares original and copy as they are."""
    missing = _unclosed_braces(root)
    if missing <= 0:
        return source, root
    repaired = source + b"\n}" * missing
    repaired_root = _parse(repaired, language).root_node
    if _errors(repaired_root)[1] < _errors(root)[1]:
        return repaired, repaired_root
    return source, root


# ---------------------------------------------------------------------------------------
# Mining new names


def _poolable(name: str, language: str) -> bool:
    """Real-looking variable names: lower-case start (never a type or a macro), no ``$``."""
    return (
        _POOL_NAME.fullmatch(name) is not None
        and name not in language_keywords(language)
        and not is_macro_like(name)
    )


def _analyse(source: bytes, root: Node, language: str) -> ScopeAnalysis:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, _RECURSION_LIMIT))
    try:
        return analyse_scopes(root, source, language)
    finally:
        sys.setrecursionlimit(limit)


def mine_identifiers(codes: Iterable[str], language: str, limit: int = 5000, min_count: int = 2) -> list[str]:
    """Parameter and local names declared in ``codes``, most frequent first (ties by name).

    Why from the task's own training code: the copies should look like the task's code
    (``buf``, ``ctx``, ``len`` for C; ``reader``, ``sb`` for Java), not like ``v1, v2``.
    Only functions that parse cleanly contribute; a name is counted once per function and
    must occur in ``min_count`` functions. A name that is often used *undeclared* (a
    global, a library function, a field: in at least 1/20 as many functions as it is
    declared in) is dropped: as a new local it could shadow a global that some macro
    expansion uses (QEMU's ``env``) -- too risky for a few more names.
    """
    declared: Counter[str] = Counter()
    free: Counter[str] = Counter()
    for code in codes:
        source = _encode(code)
        root = _parse(source, language).root_node
        if root.has_error:
            continue
        try:
            analysis = _analyse(source, root, language)
        except RecursionError:
            continue
        names = {
            b.text for b in analysis.bindings if b.renamable and b.kind in ("parameter", "local")
        } - analysis.unsafe
        declared.update(names)
        free.update(set(analysis.free))
    pool = [
        name
        for name, count in declared.items()
        if count >= min_count and free[name] * _FREE_RATIO < count and _poolable(name, language)
    ]
    pool.sort(key=lambda name: (-declared[name], name))
    return pool[:limit]


def _draw(pool: Sequence[str], rng: Random, taken: set[str], language: str) -> str | None:
    """A pool name not in ``taken``: random draws first, then a scan from a random start."""
    if not pool:
        return None
    size = len(pool)
    for _ in range(32):
        name = pool[rng.randrange(size)]
        if name not in taken and _poolable(name, language):
            return name
    start = rng.randrange(size)
    for step in range(size):
        name = pool[(start + step) % size]
        if name not in taken and _poolable(name, language):
            return name
    return None


# ---------------------------------------------------------------------------------------
# Renaming


def _candidates(
    bindings: list[Binding], unsafe: set[str], free: Counter[str], language: str, had_errors: bool
) -> list[tuple[str, str, list[Binding]]]:
    """(namespace, old text, bindings to rename) per renamable name, in order of appearance."""
    groups: dict[tuple[str, str], list[Binding]] = {}
    for binding in bindings:
        groups.setdefault((binding.namespace, binding.text), []).append(binding)
    out = []
    for (namespace, text), group in groups.items():
        # the parser read these as identifiers, so even a contextual keyword (Java `to`,
        # `record`) or a C++ keyword in C (`new`) is a name here and may be renamed
        renamable = [b for b in group if b.renamable and b.spans]
        if not renamable or text in unsafe or not WORD.fullmatch(text):
            continue
        if language == "c" and is_macro_like(text):
            continue
        if namespace == "method" and len(renamable) < len(group):
            continue  # overloads in one snippet: all keep the name if one must
        if had_errors and namespace == "variable" and (len(renamable) < len(group) or free[text]):
            # scopes may be misread around a parse error: rename a name only if every
            # occurrence of it belongs to the function's own, renamable declarations
            continue
        out.append((namespace, text, renamable))
    out.sort(key=lambda item: min(span[0] for b in item[2] for span in b.spans))
    return out


def rename_identifiers(code: str, language: str, names: Sequence[str], rng: Random) -> RenameResult:
    """A consistently renamed copy of the function(s) in ``code`` (see the module docstring).

    ``names``: the pool of new names (``mine_identifiers``); ``rng`` draws from it, so the
    same ``rng`` state gives the same copy. Pool entries that do not look like a variable
    (an upper-case start, ALL_CAPS, ``$``, a keyword) are never drawn; when the pool runs
    out of fresh names, the remaining names keep theirs. Raises ``AvatarError`` for an
    unsupported language.
    """
    return _rename(code, language, lambda kind, taken: _draw(names, rng, taken, language), keep_old=True)


CANONICAL_PREFIX = {"function": "f", "method": "f", "variable": "v"}


def _letters(number: int) -> str:
    """0 -> a, 25 -> z, 26 -> aa, 27 -> ab ...: a canonical name's suffix."""
    out = ""
    number += 1
    while number:
        number, rest = divmod(number - 1, 26)
        out = chr(ord("a") + rest) + out
    return out


def canonical_identifiers(code: str, language: str) -> RenameResult:
    """The function(s) in ``code`` with every renamable name replaced by a canonical one.

    The same names as ``rename_identifiers`` renames, in order of first appearance: the
    function or method names ``fa, fb, ...``, parameters and locals ``va, vb, ..., vz, vaa,
    ...`` (a name already used by a word that stays in the code is skipped). Why: a student
    that reads only canonical names cannot change its answer when a function's names are
    renamed -- the original and any consistently renamed copy have the same canonical form --
    and the form is idempotent. Letters, not digits: a byte-level tokenizer splits ``v12``
    into three pieces, while ``vl`` can be one token. What is lost is what the names said.
    """
    counters: dict[str, int] = {}

    def choose(kind: str, taken: set[str]) -> str:
        prefix = CANONICAL_PREFIX[kind]
        number = counters.get(prefix, 0)
        while prefix + _letters(number) in taken:
            number += 1
        counters[prefix] = number + 1
        return prefix + _letters(number)

    return _rename(code, language, choose, keep_old=False)


def _words_left(source: bytes, candidates: list[tuple[str, str, list[Binding]]]) -> set[str]:
    """The words of ``source`` outside the spans about to be renamed (comments and literals included)."""
    blanked = bytearray(source)
    for _, _, group in candidates:
        for binding in group:
            for start, end in binding.spans:
                blanked[start:end] = b" " * (end - start)
    return set(WORD.findall(_decode(bytes(blanked))))


def _rename(code: str, language: str, choose: Callable[[str, set[str]], str | None],
            keep_old: bool) -> RenameResult:
    """The renaming engine: ``choose(kind, taken)`` names each renamable name in order of
    appearance (None: it keeps its name). With ``keep_old``, no new name equals any word of
    the original (a random copy always differs); without, the names that are renamed
    everywhere are free again (the canonical form of a canonical form is itself)."""
    parser_for(language)  # unsupported language: one clear error, before anything else
    source = _encode(code)
    root = _parse(source, language).root_node
    had_errors = root.has_error
    analysis_source, analysis_root = source, root
    if had_errors:
        analysis_source, analysis_root = _analysis_tree(source, root, language)
        covered = _errors(analysis_root)[1]
        if covered > _MAX_ERROR_SHARE * max(len(source), 1):
            return _skip("parse errors cover over half of the code")
    try:
        analysis = _analyse(analysis_source, analysis_root, language)
    except RecursionError:
        return _skip("nesting too deep to analyse")
    candidates = _candidates(analysis.bindings, analysis.unsafe, analysis.free, language, had_errors)
    if not candidates:
        return RenameResult("unchanged", code, (), "nothing to rename")

    reusable: set[str] = set()
    if keep_old:
        taken = set(WORD.findall(code)) | language_keywords(language)
    else:  # only the words left once the renamed occurrences are gone: the same for any renamed copy
        left = _words_left(source, candidates)
        reusable = set(WORD.findall(code)) - left
        taken = left | language_keywords(language)
    renames: list[Rename] = []
    edits: dict[int, tuple[int, str, str]] = {}  # start byte -> (end byte, new, old)
    for namespace, old, group in candidates:
        kind = {"method": "method"}.get(namespace, "function" if group[0].kind == "function" else "variable")
        new = choose(kind, taken)
        if new is None:
            continue
        taken.add(new)
        renames.append(Rename(old, new, kind))
        for binding in group:
            for start, end in binding.spans:
                previous = edits.setdefault(start, (end, new, old))
                if previous != (end, new, old):
                    return _skip(f"internal: {old!r} at byte {start} renamed twice")
    if not renames:
        return _skip("no fresh name left in the pool")

    pieces: list[bytes] = []
    cursor = 0
    for start in sorted(edits):
        end, new, old = edits[start]
        if start < cursor or source[start:end] != _encode(old):
            return _skip(f"internal: overlapping or misplaced edit at byte {start}")
        pieces += [source[cursor:start], new.encode("ascii")]
        cursor = end
    pieces.append(source[cursor:])
    renamed = b"".join(pieces)
    pairs = [(r.old, r.new) for r in renames]
    problem = _check(source, root, renamed, language, pairs, reusable)
    if problem is None and analysis_source is not source:  # the repaired copy must match too
        repaired = renamed + analysis_source[len(source) :]
        problem = _check(analysis_source, analysis_root, repaired, language, pairs, reusable)
    if problem is not None:
        return _skip(f"check failed: {problem}")
    return RenameResult("changed", _decode(renamed), tuple(renames))
