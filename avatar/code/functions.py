"""Every function of a source file, found with tree-sitter: what ``avatar scan`` classifies.

Why tree-sitter and not a regex: a student was trained on whole functions, so a scan must
cut a file exactly where the functions begin and end, through macros, comments, nested
classes and code that does not compile. tree-sitter recovers from syntax errors, so a file
with a broken region still yields the functions around it; the broken region is skipped.

A file is read as bytes and decoded with replacement (old C code has Latin-1 comments), and
a file over ``max_bytes`` (generated tables, amalgamations) or with a NUL byte (not source)
is skipped with one warning rather than stalling or failing the whole scan.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tree_sitter import Node

from avatar.code.parsing import check_language, parser_for
from avatar.core.errors import AvatarError

EXTENSIONS: dict[str, tuple[str, ...]] = {"c": (".c", ".h"), "java": (".java",)}
"""The file extensions scanned for each language (compared case-insensitively)."""

MAX_FILE_BYTES = 2 * 1024 * 1024
"""Files larger than this are skipped with a warning: hand-written functions live in smaller files."""

SKIP_DIRS = frozenset({
    "build", "_build", "builddir", "cmake-build-debug", "cmake-build-release", "CMakeFiles", "dist",
    "target", "out", "node_modules", "__pycache__", "venv", "site-packages",
})
"""Folder names never walked into (besides hidden folders such as ``.git``): build outputs and
vendored environments hold generated or third-party code, not the project's own functions."""

_JAVA_FUNCTIONS = frozenset({
    "method_declaration", "constructor_declaration", "compact_constructor_declaration",
})
_JAVA_SCOPES = frozenset({
    "class_declaration", "interface_declaration", "enum_declaration", "record_declaration",
    "annotation_type_declaration",
}) | _JAVA_FUNCTIONS
_C_NAME_NODES = frozenset({"identifier", "field_identifier", "type_identifier"})
Warn = Callable[[str], None]


@dataclass(frozen=True)
class Function:
    """One function: where it is (1-based, inclusive lines) and its source text."""

    path: str
    start_line: int
    end_line: int
    name: str
    code: str


def _ignore(message: str) -> None:
    """The default ``warn``: callers that show nothing get nothing."""


def check_scan_language(language: str) -> str:
    """``language`` if functions can be extracted from it, else one line naming those that can."""
    if language not in EXTENSIONS:
        raise AvatarError(f"cannot scan {language!r} code; supported: {', '.join(EXTENSIONS)}")
    return check_language(language)


def has_language(path: str | os.PathLike[str], language: str) -> bool:
    """Whether ``path``'s extension is one of ``language``'s (``.c``/``.h`` for C, ``.java``)."""
    return os.fspath(path).lower().endswith(EXTENSIONS[language])


def _c_name(node: Node) -> str | None:
    """The identifier a C declarator declares: through pointers, parentheses and the function's
    own declarator (``int (*f(void))(int)`` names ``f``)."""
    declarator = node.child_by_field_name("declarator")
    while declarator is not None:
        if declarator.type in _C_NAME_NODES:
            return _text(declarator)
        inner = declarator.child_by_field_name("declarator")
        if inner is None and declarator.type == "parenthesized_declarator":
            inner = next((c for c in declarator.named_children if c.type != "comment"), None)
        declarator = inner
    return None


def _signature(node: Node, body: Node | None, source: bytes) -> str:
    """What precedes the body, whitespace-normalised: the name of a macro-made function
    (``PHP_FUNCTION(strlen) {...}``) that has no plain declarator."""
    end = body.start_byte if body is not None else node.end_byte
    text = " ".join(source[node.start_byte:end].decode("utf-8", errors="replace").split())
    return text[:80] or "<anonymous>"


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", errors="replace")


def _start_byte(node: Node, source: bytes) -> int:
    """Where the function's text starts. A definition that swallowed a syntax error in front of
    it (tree-sitter joins the broken line's last word to the next function's type) starts at
    the beginning of its declarator's line instead, so the broken bit is left out."""
    declarator = node.child_by_field_name("declarator") or node.child_by_field_name("name")
    if not node.has_error or declarator is None or declarator.start_point.row == node.start_point.row:
        return node.start_byte
    before = [child for child in node.children if child.end_byte <= declarator.start_byte]
    if not any(child.has_error for child in before):  # the error is in the body: the start is right
        return node.start_byte
    return source.rfind(b"\n", 0, declarator.start_byte) + 1


def _function(node: Node, source: bytes, path: str, name: str) -> Function:
    start = _start_byte(node, source)
    code = source[start:node.end_byte].decode("utf-8", errors="replace")
    start_line = source.count(b"\n", 0, start) + 1
    return Function(path=path, start_line=start_line, end_line=node.end_point.row + 1, name=name, code=code)


def _walk_c(root: Node, source: bytes, path: str) -> Iterator[Function]:
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "function_definition":
            body = node.child_by_field_name("body")
            if body is not None and body.end_byte > body.start_byte:
                yield _function(node, source, path, _c_name(node) or _signature(node, body, source))
            continue  # C has no nested functions worth a row (GNU C's are part of their parent)
        stack.extend(reversed(node.children))


def _walk_java(root: Node, source: bytes, path: str) -> Iterator[Function]:
    """Methods and constructors anywhere, nested and anonymous classes included, each named
    after the classes and methods around it (``Outer.Inner.run``)."""
    stack: list[tuple[Node, tuple[str, ...]]] = [(root, ())]
    while stack:
        node, scope = stack.pop()
        if node.type in _JAVA_SCOPES:
            name_node = node.child_by_field_name("name")
            scope = (*scope, _text(name_node)) if name_node is not None else scope
            if node.type in _JAVA_FUNCTIONS and node.child_by_field_name("body") is not None:
                yield _function(node, source, path, ".".join(scope) or "<anonymous>")
        stack.extend((child, scope) for child in reversed(node.children))


def extract_functions(source: bytes | str, language: str, path: str = "") -> list[Function]:
    """The functions of one file's ``source`` in file order; never raises on bad syntax.

    Bytes that are not UTF-8 become U+FFFD before parsing, so lines and text agree with
    what the student reads. C: every ``function_definition`` with a body (in ``#ifdef``
    blocks, ``extern "C"`` and error regions too); Java: every method and constructor with
    a body, nested, local and anonymous classes included.
    """
    check_scan_language(language)
    text = source.decode("utf-8", errors="replace") if isinstance(source, bytes) else source
    data = text.encode("utf-8", errors="replace")
    root = parser_for(language).parse(data).root_node
    walk = _walk_c if language == "c" else _walk_java
    return sorted(walk(root, data, path), key=lambda f: (f.start_line, f.end_line))


def read_functions(path: str | os.PathLike[str], language: str, *, max_bytes: int = MAX_FILE_BYTES,
                   warn: Warn = _ignore, display: str | None = None) -> list[Function]:
    """The functions of the file at ``path`` (named ``display`` in the results), or none with
    one ``warn`` line when the file is unreadable, larger than ``max_bytes``, or binary."""
    name = display if display is not None else os.fspath(path)
    try:
        size = os.path.getsize(path)
        if size > max_bytes:
            warn(f"skipped {name}: {size / 2**20:.1f} MiB is over the {max_bytes / 2**20:g} MiB limit "
                 "(--max-file-mb)")
            return []
        data = Path(path).read_bytes()
    except OSError as error:
        warn(f"skipped {name}: cannot read it ({error.strerror or error})")
        return []
    nul = data.find(b"\0")
    if nul >= 0:
        warn(f"skipped {name}: a NUL byte at offset {nul}: binary, not source code")
        return []
    return extract_functions(data, language, name)


def _walk_folder(folder: Path, display: str, language: str) -> Iterator[tuple[Path, str]]:
    """The folder's files of ``language`` in sorted order, hidden and build folders pruned."""
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
        relative = os.path.relpath(current, folder)
        for file in sorted(files):
            if has_language(file, language):
                shown = os.path.normpath(os.path.join(display, relative, file))
                yield Path(current) / file, shown


def source_files(paths: Iterable[str | os.PathLike[str]], language: str, warn: Warn = _ignore
                 ) -> list[tuple[Path, str]]:
    """``(resolved path, path as shown)`` for every file of ``language`` under ``paths``.

    A folder is walked recursively; a file is taken when its extension is the language's
    (another supported language's file is skipped silently: pre-commit passes C and Java
    files alike; any other file with one warning). A path that does not exist is an error,
    and a file reached twice is scanned once.
    """
    seen: set[Path] = set()
    found: list[tuple[Path, str]] = []
    other_languages = tuple(ext for lang, exts in EXTENSIONS.items() if lang != language for ext in exts)
    for given in paths:
        path = Path(given)
        if path.is_dir():
            candidates: Iterable[tuple[Path, str]] = _walk_folder(path, os.fspath(given), language)
        elif path.is_file():
            if not has_language(path, language):
                if not os.fspath(path).lower().endswith(other_languages):
                    extensions = ", ".join(EXTENSIONS[language])
                    warn(f"skipped {given}: not a {language.upper()} file ({extensions})")
                continue
            candidates = [(path, os.fspath(given))]
        else:
            raise AvatarError(f"path not found: {given}")
        for file, shown in candidates:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                found.append((key, shown))
    return found
