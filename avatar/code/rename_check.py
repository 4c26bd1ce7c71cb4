"""The rename check: a renamed copy must differ from its original only at the renamed names.

The copy must parse with no more errors (ERROR/MISSING nodes) than the original, into the
same tree, with the same tokens and the same text between them everywhere except at
identifiers whose old -> new pair is one of the renames (with parse errors in the
original, only the tokens and the text between them are compared: tree-sitter's error
recovery may regroup the same tokens).
"""

from __future__ import annotations

import functools
from collections.abc import Collection

from tree_sitter import Node, Tree

from avatar.code.parsing import parser_for
from avatar.code.scopes import WORD

_JAVA_RESERVED = frozenset(
    """abstract assert boolean break byte case catch char class const continue default do double
    else enum extends final finally float for goto if implements import instanceof int interface
    long native new package private protected public return short static strictfp super switch
    synchronized this throw throws transient try void volatile while true false null var yield
    record sealed permits non when module open opens exports requires to uses provides with
    transitive _""".split()
)
# C keywords (C89 to C23, GNU), names the standard library may define as macros, and C++
# keywords (new names only: a copy should stay valid for tools that read C as C++).
_C_RESERVED = frozenset(
    """auto break case char const continue default do double else enum extern float for goto if
    inline int long register restrict return short signed sizeof static struct switch typedef
    union unsigned void volatile while _Bool _Complex _Imaginary _Alignas _Alignof _Atomic
    _Generic _Noreturn _Static_assert _Thread_local bool true false nullptr alignas alignof
    constexpr static_assert thread_local typeof typeof_unqual asm __asm__ __asm __attribute__
    __inline __inline__ __restrict __restrict__ __typeof__ __volatile__ __extension__ __func__
    __FUNCTION__ __PRETTY_FUNCTION__ NULL errno stdin stdout stderr assert offsetof va_arg
    va_start va_end va_copy va_list setjmp longjmp complex imaginary noreturn linux unix i386
    main new delete class this template typename namespace operator private public protected
    virtual friend try catch throw mutable explicit export using""".split()
)
_RESERVED = {"c": _C_RESERVED, "java": _JAVA_RESERVED}


@functools.cache
def language_keywords(language: str) -> frozenset[str]:
    """Words a new name must never be: the grammar's own keyword tokens plus the language's
    reserved and contextual words (a keyword-named variable would not even parse)."""
    lang = parser_for(language).language
    grammar = {
        lang.node_kind_for_id(i)
        for i in range(lang.node_kind_count)
        if not lang.node_kind_is_named(i) and lang.node_kind_is_visible(i)
    }
    return frozenset(w for w in grammar if WORD.fullmatch(w)) | _RESERVED[language]


def _encode(code: str) -> bytes:
    # surrogatepass: a str with lone surrogates round-trips instead of raising
    return code.encode("utf-8", errors="surrogatepass")


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="surrogatepass")


def _parse(source: bytes, language: str) -> Tree:
    return parser_for(language).parse(source)


def _errors(root: Node) -> tuple[int, int]:
    """(number of ERROR and MISSING nodes, bytes covered by ERROR nodes)."""
    if not root.has_error:
        return 0, 0
    count = covered = 0
    stack = [(root, False)]
    while stack:
        node, inside_error = stack.pop()
        if node.type == "ERROR":
            count += 1
            if not inside_error:  # nested errors cover bytes already counted
                covered += node.end_byte - node.start_byte
            inside_error = True
        elif node.is_missing:
            count += 1
        if node.has_error:  # subtrees without errors need no visit
            stack.extend((child, inside_error) for child in node.children)
    return count, covered


# ---------------------------------------------------------------------------------------
# The check


def check_rename(
    original: str, transformed: str, language: str, renames: Collection[tuple[str, str]]
) -> str | None:
    """Why ``transformed`` is not a safe renaming of ``original`` by the (old, new) pairs, or None.

    Safe means: every new name is a fresh, non-keyword identifier, used for one old name
    only; the copy parses with no more ERROR/MISSING nodes; its tokens (tree-sitter
    leaves, comments and literal pieces included) and the text between them are the
    original's except identifiers renamed by a listed pair. When the original parses
    cleanly the copy must also parse into the very same tree (node types and shape). With
    parse errors only the tokens are compared: tree-sitter's error recovery weighs the
    bytes it skips, so a longer or shorter name may regroup the same tokens differently.
    """
    source = _encode(original)
    return _check(source, _parse(source, language).root_node, _encode(transformed), language, renames)


def _check(
    source: bytes, root: Node, renamed: bytes, language: str, renames: Collection[tuple[str, str]],
    reusable: Collection[str] = (),
) -> str | None:
    """Why the copy is refused, or None. ``reusable``: words of the original that the renaming
    removes everywhere, so a new name may take them (the canonical form's ``va`` again)."""
    new_names = [new for _, new in renames]
    if len(set(new_names)) != len(new_names):
        return "one new name stands for two old names"
    words = set(WORD.findall(_decode(source))) - set(reusable)
    keywords = language_keywords(language)
    for new in new_names:
        if not WORD.fullmatch(new) or new in keywords:
            return f"new name {new!r} is not a plain identifier"
        if new in words:
            return f"new name {new!r} collides with a name already in the function"
    new_root = _parse(renamed, language).root_node
    if _errors(new_root)[0] > _errors(root)[0]:
        return "the copy has more parse errors than the original"
    pairs = {(_encode(old), _encode(new)) for old, new in renames}
    if root.has_error:
        return _compare_tokens(source, root, renamed, new_root, pairs)
    return _compare_trees(source, root, renamed, new_root, pairs)


def _compare_trees(
    source: bytes, root: Node, renamed: bytes, new_root: Node, pairs: set[tuple[bytes, bytes]]
) -> str | None:
    """Same tree, same leaves and same text between them, except renamed identifiers."""
    stack = [(root, new_root)]
    old_end = new_end = 0
    while stack:
        a, b = stack.pop()
        if a.type != b.type or a.child_count != b.child_count:
            return f"the parse tree changed at byte {a.start_byte} ({a.type} became {b.type})"
        if a.child_count:
            stack.extend(zip(reversed(a.children), reversed(b.children)))
            continue
        if source[old_end : a.start_byte] != renamed[new_end : b.start_byte]:
            return f"text between tokens changed before byte {a.start_byte}"
        token_a, token_b = source[a.start_byte : a.end_byte], renamed[b.start_byte : b.end_byte]
        if token_a != token_b and (a.type != "identifier" or (token_a, token_b) not in pairs):
            return f"token {_decode(token_a)!r} at byte {a.start_byte} became {_decode(token_b)!r}"
        old_end, new_end = a.end_byte, b.end_byte
    if source[old_end:] != renamed[new_end:]:
        return "text after the last token changed"
    return None


def _leaves(root: Node) -> list[Node]:
    out: list[Node] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.child_count == 0:
            if node.end_byte > node.start_byte:  # MISSING nodes are not in the text
                out.append(node)
        else:
            stack.extend(reversed(node.children))
    return out


def _compare_tokens(
    source: bytes, root: Node, renamed: bytes, new_root: Node, pairs: set[tuple[bytes, bytes]]
) -> str | None:
    """Same token sequence and same text between tokens, except renamed identifiers."""
    old_leaves, new_leaves = _leaves(root), _leaves(new_root)
    if len(old_leaves) != len(new_leaves):
        return f"{len(old_leaves)} tokens became {len(new_leaves)}"
    old_end = new_end = 0
    for a, b in zip(old_leaves, new_leaves):
        if source[old_end : a.start_byte] != renamed[new_end : b.start_byte]:
            return f"text between tokens changed before byte {a.start_byte}"
        token_a, token_b = source[a.start_byte : a.end_byte], renamed[b.start_byte : b.end_byte]
        if token_a != token_b and (token_a, token_b) not in pairs:
            return f"token {_decode(token_a)!r} at byte {a.start_byte} became {_decode(token_b)!r}"
        old_end, new_end = a.end_byte, b.end_byte
    if source[old_end:] != renamed[new_end:]:
        return "text after the last token changed"
    return None
