"""Scope analysis of one C or Java function, the language-free half: bindings and the walker.

The language walkers (``java_scopes``, ``c_scopes``) extend ``_Walker``; ``scopes`` runs them.

A rename is only safe if every occurrence of a renamed variable is found and nothing
else is touched. This module walks a tree-sitter parse tree with a stack of scopes and
sorts every identifier token into one of:

* a *binding occurrence*: the declaration or a use of a name that the function declares
  itself (a parameter, a local, a for/catch/lambda/pattern variable, the function or
  method name). A binding is ``renamable`` or not (fields of a local class, enumerators,
  ``extern`` declarations and prototypes are declared so that they hide outer names, but
  are never renamed);
* a *free* use: a variable-position identifier declared nowhere in the snippet (a Java
  field accessed without ``this.``, a C global, a class used as a receiver);
* a non-variable position that is ignored (field and method names after ``.``, labels,
  types, callee names in Java) -- another namespace, so a rename never has to touch it;
* *unsafe*: an identifier whose role cannot be known (inside an ``ERROR`` node, a
  preprocessor directive, a bare argument of a C macro call, an annotation, inline
  assembly). Its *text* is put in ``unsafe``: no binding with that text is ever renamed.

The analysis never changes code; ``avatar.code.rename`` decides what to rename from it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tree_sitter import Node

from avatar.code.parsing import COMMENTS

WORD = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
"""An identifier-like word (Java allows ``$``; C compilers accept it too)."""

_MACRO_LIKE = re.compile(r"_*[A-Z][A-Z0-9_]*")



def is_macro_like(text: str) -> bool:
    """ALL_CAPS names: in C these are (almost always) macros, whose expansion is unknown."""
    return _MACRO_LIKE.fullmatch(text) is not None


@dataclass
class Binding:
    """One declared name and the byte spans of all its occurrences (declaration included)."""

    text: str
    kind: str  # parameter | local | function | method | field | enumerator | extern | prototype ...
    renamable: bool
    namespace: str = "variable"  # Java methods live in a namespace of their own
    spans: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class ScopeAnalysis:
    """What ``analyse_scopes`` found in one snippet."""

    bindings: list[Binding]
    free: Counter[str]  # variable-position identifiers declared nowhere in the snippet
    unsafe: set[str]  # texts that occur where their role is unknown: never rename them


class _Walker:
    """The language-independent part: scopes, declarations, uses, unsafe texts.

    Subclasses name the node types that hold no variables (``opaque``), the literals whose
    words are not names (``literals``), the declaring nodes whose names are suspect when
    they hold a parse error (``declaring``), and a handler per node type that declares,
    opens a scope or skips a non-variable child; every other node visits its children.
    """

    opaque: frozenset[str] = frozenset()
    literals: frozenset[str] = frozenset()
    declaring: frozenset[str] = frozenset()

    def __init__(self, source: bytes) -> None:
        self.src = source
        self.scopes: list[dict[str, Binding]] = [{}]
        self.bindings: list[Binding] = []
        self.free: Counter[str] = Counter()
        self.unsafe: set[str] = set()
        self.handlers: dict[str, Callable[[Node], None]] = {}

    # -- helpers -----------------------------------------------------------------------

    def text(self, node: Node) -> str:
        return self.src[node.start_byte : node.end_byte].decode("utf-8", errors="replace")

    def declare(self, node: Node, kind: str, renamable: bool, namespace: str = "variable") -> Binding | None:
        """Declare ``node`` (an identifier) in the innermost scope; a redeclaration reuses the binding."""
        if node.end_byte <= node.start_byte:  # tree-sitter's MISSING identifier
            return None
        if node.type != "identifier":
            self.mark_unsafe(node)
            return None
        text = self.text(node)
        scope = self.scopes[-1]
        binding = scope.get(text)
        if binding is None:
            binding = Binding(text, kind, renamable, namespace)
            scope[text] = binding
            self.bindings.append(binding)
        else:  # K&R parameter declarations, the two arms of an #if: one name, one binding
            binding.renamable = binding.renamable and renamable
        binding.spans.append((node.start_byte, node.end_byte))
        return binding

    def resolve(self, text: str) -> Binding | None:
        for scope in reversed(self.scopes):
            binding = scope.get(text)
            if binding is not None:
                return binding
        return None

    def use(self, node: Node) -> Binding | None:
        """A variable-position identifier: an occurrence of its binding, or a free name."""
        if node.end_byte <= node.start_byte:
            return None
        text = self.text(node)
        binding = self.resolve(text)
        if binding is None:
            self.free[text] += 1
        else:
            binding.spans.append((node.start_byte, node.end_byte))
        return binding

    def mark_unsafe(self, node: Node) -> None:
        """Every identifier-like leaf under ``node`` (literals and comments excepted) is unsafe."""
        stack = [node]
        while stack:
            current = stack.pop()
            if current.type in COMMENTS or current.type in self.literals:
                continue
            if current.child_count == 0:  # a preproc_arg leaf is a whole #define body: all its words
                self.unsafe.update(WORD.findall(self.text(current)))
            else:
                stack.extend(current.children)

    def mark_unsafe_text(self, node: Node) -> None:
        """Every word in the raw text of ``node``: for preprocessor lines and assembly, whose
        contents tree-sitter does not tokenise (a ``#define`` body is one ``preproc_arg``)."""
        self.unsafe.update(WORD.findall(self.text(node)))

    def push(self) -> None:
        self.scopes.append({})

    def pop(self) -> None:
        self.scopes.pop()

    @contextmanager
    def scope(self) -> Iterator[None]:
        """A block scope: names declared inside it are gone when it ends, however it ends."""
        self.push()
        try:
            yield
        finally:
            self.pop()

    def scoped(self, node: Node) -> None:
        with self.scope():
            self.children(node)

    def children(self, node: Node) -> None:
        for child in node.named_children:
            self.visit(child)

    def visit(self, node: Node | None) -> None:
        if node is None:
            return
        kind = node.type
        if kind in self.declaring and node.has_error:
            # `int av_unused x = 1;` parses as a declaration of av_unused plus an error: a
            # declaration with an error in it may declare the wrong names
            self.mark_unsafe(node)
        if kind == "identifier":
            self.use(node)
        elif kind == "ERROR":
            self.mark_unsafe(node)
        elif kind in self.opaque:
            if node.has_error:  # an error hidden in a type or literal: its words are unknown
                self.mark_unsafe(node)
        else:
            handler = self.handlers.get(kind)
            if handler is not None:
                handler(node)
            else:
                self.children(node)

    def result(self) -> ScopeAnalysis:
        return ScopeAnalysis(self.bindings, self.free, self.unsafe)
