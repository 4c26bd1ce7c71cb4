"""Data-flow graphs of C and Java code (GraphCodeBERT's extra input; the tensors: ``avatar.graphcodebert``).

GraphCodeBERT (Guo et al., ICLR 2021) feeds its encoder, beside the code subwords, one extra
input position per *variable occurrence*; attention between those positions follows the
data flow ("the value of this x comes from that assignment of x"). A teacher or student
that takes that input needs three things, all here:

* ``code_tokens`` and ``extract_dataflow``: our own extractor over tree-sitter parse trees
  (written from the paper's description, not from its code). Every variable occurrence
  gets exactly one ``DataFlowEdge`` record: a *definition* (``x = e``, ``int x = e``,
  ``x += e``, ``x++``) is ``computedFrom`` the variable occurrences of ``e`` (plus the
  reaching definitions of ``x`` itself for compound and partial updates); a *use* is
  ``comesFrom`` the definitions of that name that may reach it. The analysis is a small
  abstract interpretation: branches are run on copies of the state and merged (union),
  loop bodies run twice so uses see the previous iteration (loops nested deeper than 8
  run once: twice costs 2**depth), ``return``/``break``/``continue``/``throw`` end a path,
  block scopes hide names declared inside them.
* ``avatar.graphcodebert`` turns them into model inputs (``graph_inputs``) and runs a
  classifier the way GraphCodeBERT does (``graph_guided_forward``).

Choices worth knowing (all deliberate, see the tests for examples):

* Tokens are the parse tree's leaves without comments; a string or character literal is
  one token (its quotes and contents would only spend sequence length).
* ``sources`` and ``source_indices`` are parallel tuples sorted by token index, so a use
  reached by two definitions reads ``sources=("x", "x"), source_indices=(3, 9)``.
* The sources of a definition are all variable occurrences of its value expression
  (``x = a[i] + f(b)``: ``a``, ``i``, ``b``); for ``y = (x = e)`` it is the new ``x``.
* A use that no definition reaches (a global, a field of another class, a constant) and a
  parameter or a declaration without initialiser are ``comesFrom`` with no sources.
* ``a[i] = e``, ``s.f = e``, ``p->f = e``, ``*p = e`` are *partial* writes of the base
  variable: the base occurrence is ``computedFrom`` the variables of ``e`` and the earlier
  definitions of the base (the rest of the array or struct still comes from there); the
  index ``i`` is an ordinary use. A Java ``this.f`` has no base variable and defines
  nothing (``this`` is not a variable).
* Function and method names, field names, types, labels and macro definitions are not
  variables. Class names used as receivers (``Math.max``) cannot be told from variables
  without type information and appear as uses with no sources, as in GraphCodeBERT.
* Each C function and Java method is analysed from the state after the file's globals /
  the class's fields; definitions inside one method do not flow into another.
* ``goto`` and exceptions thrown mid-``try`` are approximated (goto is ignored; a
  ``catch`` starts from the union of the states before and after the ``try`` block).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import tree_sitter_c
import tree_sitter_java
from tree_sitter import Language, Node, Parser, Tree

from avatar.errors import AvatarError

SUPPORTED_LANGUAGES: tuple[str, ...] = ("c", "java")

_GRAMMARS: dict[str, Callable[[], Any]] = {"c": tree_sitter_c.language, "java": tree_sitter_java.language}

# Deep else-if chains and long operator chains nest the tree deeply; the walker recurses.
_RECURSION_LIMIT = 20_000
# Walking each loop twice costs 2**depth for nested loops: deeper ones are walked once.
_MAX_TWICE_DEPTH = 8


@dataclass(frozen=True)
class DataFlowEdge:
    """One variable occurrence and where its value comes from.

    ``token_index`` and ``source_indices`` index ``code_tokens(code, language)``;
    ``sources`` holds the names at ``source_indices`` (parallel tuples, sorted by index).
    """

    name: str
    token_index: int
    relation: str  # "comesFrom" | "computedFrom"
    sources: tuple[str, ...]
    source_indices: tuple[int, ...]


# ---------------------------------------------------------------------------------------
# Language rules: which nodes hold no variables, which fields are names, what is a block.


@dataclass(frozen=True)
class _Rules:
    atomic: frozenset[str]  # subtrees that are one token (literals)
    opaque: frozenset[str]  # subtrees that hold no variable occurrence
    skip_fields: dict[str, frozenset[str]]  # per node type: fields that are names or types
    projections: dict[str, str]  # lvalue node type -> field of its base ("" = first child)
    blocks: frozenset[str]
    cases: frozenset[str]
    fields_first: frozenset[str]  # class members analysed before the methods


_COMMENTS = frozenset({"comment", "line_comment", "block_comment"})

_C_RULES = _Rules(
    atomic=frozenset({"string_literal", "char_literal", "system_lib_string"}),
    opaque=_COMMENTS
    | frozenset(
        {
            "primitive_type", "type_identifier", "sized_type_specifier", "struct_specifier",
            "union_specifier", "enum_specifier", "type_descriptor", "type_definition",
            "field_identifier", "statement_identifier", "number_literal", "string_literal",
            "char_literal", "concatenated_string", "system_lib_string", "true", "false", "null",
            "storage_class_specifier", "type_qualifier", "attribute_specifier",
            "attribute_declaration", "ms_declspec_modifier", "macro_type_specifier",
            "preproc_include", "preproc_def", "preproc_function_def", "preproc_call",
            "preproc_defined", "abstract_pointer_declarator", "abstract_array_declarator",
            "abstract_function_declarator", "abstract_parenthesized_declarator",
        }
    ),
    skip_fields={
        "field_expression": frozenset({"field"}),
        "cast_expression": frozenset({"type"}),
        "sizeof_expression": frozenset({"type"}),
        "alignof_expression": frozenset({"type"}),
        "offsetof_expression": frozenset({"type", "member"}),
        "compound_literal_expression": frozenset({"type"}),
        "goto_statement": frozenset({"label"}),
        "labeled_statement": frozenset({"label"}),
        "preproc_if": frozenset({"condition"}),
        "preproc_elif": frozenset({"condition"}),
        "preproc_ifdef": frozenset({"name"}),
        "preproc_elifdef": frozenset({"name"}),
    },
    projections={
        "field_expression": "argument",
        "subscript_expression": "argument",
        "pointer_expression": "argument",
        "parenthesized_expression": "",
    },
    blocks=frozenset({"compound_statement"}),
    cases=frozenset({"case_statement"}),
    fields_first=frozenset(),
)

_JAVA_RULES = _Rules(
    atomic=frozenset({"string_literal", "character_literal"}),
    opaque=_COMMENTS
    | frozenset(
        {
            "type_identifier", "integral_type", "floating_point_type", "boolean_type", "void_type",
            "generic_type", "array_type", "scoped_type_identifier", "type_arguments",
            "type_parameters", "dimensions", "modifiers", "marker_annotation", "annotation",
            "superclass", "super_interfaces", "extends_interfaces", "permits", "throws",
            "decimal_integer_literal", "hex_integer_literal", "octal_integer_literal",
            "binary_integer_literal", "decimal_floating_point_literal",
            "hex_floating_point_literal", "string_literal", "character_literal", "true", "false",
            "null_literal", "this", "super", "class_literal", "scoped_identifier",
            "import_declaration", "package_declaration", "module_declaration",
            "receiver_parameter", "catch_type",
        }
    ),
    skip_fields={
        "method_invocation": frozenset({"name", "type_arguments"}),
        "field_access": frozenset({"field"}),
        "object_creation_expression": frozenset({"type", "type_arguments"}),
        "array_creation_expression": frozenset({"type"}),
        "cast_expression": frozenset({"type"}),
        "instanceof_expression": frozenset({"right", "pattern", "name"}),
        "local_variable_declaration": frozenset({"type"}),
        "field_declaration": frozenset({"type"}),
        "constant_declaration": frozenset({"type"}),
        "enum_constant": frozenset({"name"}),
        "class_declaration": frozenset({"name"}),
        "interface_declaration": frozenset({"name"}),
        "enum_declaration": frozenset({"name"}),
        "record_declaration": frozenset({"name", "parameters"}),
        "annotation_type_declaration": frozenset({"name"}),
    },
    projections={"field_access": "object", "array_access": "array", "parenthesized_expression": ""},
    blocks=frozenset({"block", "constructor_body"}),
    cases=frozenset({"switch_block_statement_group", "switch_rule"}),
    fields_first=frozenset({"field_declaration", "constant_declaration"}),
)

_RULES = {"c": _C_RULES, "java": _JAVA_RULES}


# ---------------------------------------------------------------------------------------
# Parsing and tokens


def _check_language(language: str) -> str:
    if language not in _GRAMMARS:
        raise AvatarError(
            f"unsupported language {language!r} for data flow; supported: {', '.join(SUPPORTED_LANGUAGES)}"
        )
    return language


@functools.cache
def _parser(language: str) -> Parser:
    return Parser(Language(_GRAMMARS[language]()))


def parser_for(language: str) -> Parser:
    """The shared, cached tree-sitter parser of ``language`` (``AvatarError`` if unsupported).

    Public so that other code analyses (``avatar.code``) parse exactly as the data flow does.
    """
    return _parser(_check_language(language))


def _parse(code: str, language: str) -> Tree:
    # errors="replace": a str with lone surrogates must not make extraction raise
    return _parser(language).parse(code.encode("utf-8", errors="replace"))


def _leaves(root: Node, atomic: frozenset[str]) -> list[tuple[Node, str]]:
    """Leaves in source order with their text; iterative, so any nesting depth is fine."""
    out: list[tuple[Node, str]] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type in _COMMENTS:
            continue
        if node.child_count == 0 or node.type in atomic:
            text = (node.text or b"").decode("utf-8", errors="replace").strip()
            if node.end_byte > node.start_byte and text:  # tree-sitter's MISSING nodes are empty
                out.append((node, text))
            continue
        stack.extend(reversed(node.children))
    return out


def code_tokens(code: str, language: str) -> list[str]:
    """The parse tree's leaf tokens in order (comments dropped, a literal is one token)."""
    _check_language(language)
    return [text for _, text in _leaves(_parse(code, language).root_node, _RULES[language].atomic)]


# ---------------------------------------------------------------------------------------
# The analysis


@dataclass
class _State:
    """Reaching definitions: name -> token indices of the definitions that may reach here."""

    defs: dict[str, frozenset[int]]
    dead: bool = False  # after return/break/continue/throw: ignored when paths merge

    def copy(self) -> _State:
        return _State(dict(self.defs), self.dead)


def _merge(states: Sequence[_State]) -> _State:
    live = [s for s in states if not s.dead]
    defs: dict[str, frozenset[int]] = {}
    for state in live or states:
        for name, where in state.defs.items():
            defs[name] = defs.get(name, frozenset()) | where
    return _State(defs, dead=not live)


@dataclass
class _Frame:
    """A loop or switch: where ``break`` and ``continue`` send their states."""

    loop: bool
    breaks: list[_State] = field(default_factory=list)
    continues: list[_State] = field(default_factory=list)


class _Flow:
    """Walks one parse tree and records, per variable occurrence, where its value comes from.

    ``visit`` returns the token indices of the variable occurrences whose values make up
    the node's value: for ``a + f(b)`` that is ``[a, b]``, for ``x = y`` it is ``[x]``.
    """

    def __init__(self, language: str, index: dict[tuple[int, int], int], tokens: list[str]) -> None:
        self.rules = _RULES[language]
        self.index = index
        self.tokens = tokens
        self.state = _State({})
        self.scopes: list[dict[str, frozenset[int] | None]] = [{}]
        self.frames: list[_Frame] = []
        self.loop_depth = 0
        self.found: dict[int, tuple[str, set[int]]] = {}
        common: dict[str, Callable[[Node], list[int]]] = {
            "assignment_expression": self._assignment,
            "update_expression": self._update,
            "if_statement": self._if,
            "while_statement": self._while,
            "do_statement": self._do,
            "for_statement": self._for,
            "switch_statement": self._switch,
            "return_statement": self._exit,
            "throw_statement": self._exit,
            "break_statement": self._break,
            "continue_statement": self._continue,
            "labeled_statement": self._labeled,
        }
        for block in self.rules.blocks:
            common[block] = self._scoped
        if language == "c":
            common.update(
                {
                    "declaration": self._c_declaration,
                    "parameter_declaration": self._c_parameter,
                    "function_definition": self._c_function,
                    "call_expression": self._c_call,
                }
            )
        else:
            common.update(
                {
                    "variable_declarator": self._java_declarator,
                    "formal_parameter": self._java_parameter,
                    "catch_formal_parameter": self._java_parameter,
                    "resource": self._java_resource,
                    "method_declaration": self._java_method,
                    "constructor_declaration": self._java_method,
                    "compact_constructor_declaration": self._java_method,
                    "class_body": self._java_class_body,
                    "interface_body": self._java_class_body,
                    "enum_body": self._java_class_body,
                    "annotation_type_body": self._java_class_body,
                    "enhanced_for_statement": self._java_foreach,
                    "switch_expression": self._switch,
                    "try_statement": self._java_try,
                    "try_with_resources_statement": self._java_try,
                    "catch_clause": self._scoped,
                    "lambda_expression": self._java_lambda,
                    "instanceof_expression": self._java_instanceof,
                    "method_reference": self._java_method_reference,
                }
            )
        self.handlers = common

    # -- results -----------------------------------------------------------------------

    def edges(self) -> list[DataFlowEdge]:
        out = []
        for idx in sorted(self.found):
            relation, sources = self.found[idx]
            ordered = tuple(sorted(sources))
            names = tuple(self.tokens[s] for s in ordered)
            out.append(DataFlowEdge(self.tokens[idx], idx, relation, names, ordered))
        return out

    def _record(self, idx: int, relation: str, sources: set[int] | frozenset[int]) -> None:
        # A loop body is walked twice: the second walk adds sources, never changes the relation.
        if idx in self.found:
            self.found[idx][1].update(sources)
        else:
            self.found[idx] = (relation, set(sources))

    # -- the walk ----------------------------------------------------------------------

    def visit(self, node: Node | None) -> list[int]:
        if node is None:
            return []
        kind = node.type
        if kind == "identifier":
            return self._use(node)
        if kind in self.rules.opaque:
            return []
        handler = self.handlers.get(kind)
        if handler is not None:
            return handler(node)
        return self._children(node)

    def _children(self, node: Node) -> list[int]:
        skip = self.rules.skip_fields.get(node.type, frozenset())
        out: list[int] = []
        for i, child in enumerate(node.children):
            if child.is_named and not (skip and node.field_name_for_child(i) in skip):
                out += self.visit(child)
        return out

    def _idx(self, node: Node) -> int | None:
        return self.index.get((node.start_byte, node.end_byte))

    def _use(self, node: Node) -> list[int]:
        idx = self._idx(node)
        if idx is None:
            return []
        self._record(idx, "comesFrom", self.state.defs.get(self.tokens[idx], frozenset()))
        return [idx]

    def _define(
        self,
        node: Node | None,
        sources: Sequence[int],
        relation: str = "computedFrom",
        keep: bool = False,
        declare: bool = False,
    ) -> list[int]:
        """Record a definition of the identifier ``node``; ``keep``: the old value flows in too."""
        if node is None or node.type != "identifier":
            self.visit(node)
            return []
        idx = self._idx(node)
        if idx is None:
            return []
        name = self.tokens[idx]
        where = set(sources)
        if keep:
            where |= self.state.defs.get(name, frozenset())
        if declare:
            self._declare(name)
        self._record(idx, relation, where)
        self.state.defs[name] = frozenset({idx})
        return [idx]

    # -- scopes ------------------------------------------------------------------------

    def _declare(self, name: str) -> None:
        scope = self.scopes[-1]
        if name not in scope:
            scope[name] = self.state.defs.get(name)

    def _pop_scope(self) -> None:
        for name, outer in self.scopes.pop().items():
            if outer is None:
                self.state.defs.pop(name, None)
            else:
                self.state.defs[name] = outer

    def _scoped(self, node: Node) -> list[int]:
        self.scopes.append({})
        try:
            self._children(node)
        finally:
            self._pop_scope()
        return []

    def _isolated(self, body: Callable[[], None]) -> None:
        """Run a function, method or lambda: its definitions do not leak into the caller."""
        saved_state, saved_frames = self.state.copy(), self.frames
        self.frames = []
        self.scopes.append({})
        try:
            body()
        finally:
            self.scopes.pop()
            self.state, self.frames = saved_state, saved_frames

    # -- expressions -------------------------------------------------------------------

    def _assignment(self, node: Node) -> list[int]:
        sources = self.visit(node.child_by_field_name("right"))
        operator = node.child_by_field_name("operator")
        compound = operator is not None and operator.type != "="
        return self._target(node.child_by_field_name("left"), sources, compound)

    def _update(self, node: Node) -> list[int]:
        arg = node.child_by_field_name("argument") or _first_named(node)
        return self._target(arg, [], compound=True)

    def _target(self, node: Node | None, sources: list[int], compound: bool) -> list[int]:
        """Define the variable an lvalue writes: its base identifier (partial write if nested)."""
        partial = False
        while node is not None:
            if node.type == "identifier":
                return self._define(node, sources, keep=compound or partial)
            base_field = self.rules.projections.get(node.type)
            if base_field is None:  # a call result, `this.f`, ...: no variable is written
                self.visit(node)
                return []
            if base_field == "":
                node = _first_named(node)
                continue
            skip = self.rules.skip_fields.get(node.type, frozenset())
            for i, child in enumerate(node.children):
                name = node.field_name_for_child(i)
                if child.is_named and name != base_field and name not in skip:
                    self.visit(child)  # the index of a[i]: an ordinary use
            node, partial = node.child_by_field_name(base_field), True
        return []

    def _c_call(self, node: Node) -> list[int]:
        function = node.child_by_field_name("function")
        out = [] if function is None or function.type == "identifier" else self.visit(function)
        return out + self.visit(node.child_by_field_name("arguments"))

    def _java_method_reference(self, node: Node) -> list[int]:
        receiver = _first_named(node)
        return self.visit(receiver) if receiver is not None and receiver.type == "identifier" else []

    def _java_instanceof(self, node: Node) -> list[int]:
        sources = self._children(node)
        name = node.child_by_field_name("name")
        if name is not None:
            self._define(name, sources, declare=True)
        return sources

    def _java_lambda(self, node: Node) -> list[int]:
        def body() -> None:
            params = node.child_by_field_name("parameters")
            if params is not None and params.type == "identifier":
                self._define(params, [], "comesFrom", declare=True)
            elif params is not None and params.type == "inferred_parameters":
                for param in params.named_children:
                    self._define(param, [], "comesFrom", declare=True)
            else:
                self.visit(params)
            self.visit(node.child_by_field_name("body"))

        self._isolated(body)
        return []

    # -- declarations ------------------------------------------------------------------

    def _c_declaration(self, node: Node) -> list[int]:
        for i, child in enumerate(node.children):
            if node.field_name_for_child(i) == "declarator":
                self._c_declarator(child, None)
        return []

    def _c_parameter(self, node: Node) -> list[int]:
        declarator = node.child_by_field_name("declarator")
        if declarator is not None:
            self._c_declarator(declarator, None)
        return []

    def _c_declarator(self, node: Node | None, sources: list[int] | None) -> None:
        """Declare the variable of a C declarator; ``sources`` is None without initialiser."""
        while node is not None:
            kind = node.type
            if kind == "identifier":
                relation = "comesFrom" if sources is None else "computedFrom"
                self._define(node, sources or [], relation, declare=True)
                return
            if kind == "init_declarator":
                sources = self.visit(node.child_by_field_name("value"))
                node = node.child_by_field_name("declarator")
            elif kind == "function_declarator":
                inner = node.child_by_field_name("declarator")
                # `int (*cb)(int)` declares a variable; `int f(int)` only a prototype
                node = inner if inner is not None and inner.type == "parenthesized_declarator" else None
            elif kind in ("pointer_declarator", "array_declarator", "parenthesized_declarator",
                          "attributed_declarator"):
                if kind == "array_declarator":
                    self.visit(node.child_by_field_name("size"))
                node = node.child_by_field_name("declarator") or _first_named(
                    node, exclude=("type_qualifier", "attribute_specifier", "ms_pointer_modifier")
                )
            else:
                self.visit(node)
                return

    def _java_declarator(self, node: Node) -> list[int]:
        value = node.child_by_field_name("value")
        name = node.child_by_field_name("name")
        if value is None:
            self._define(name, [], "comesFrom", declare=True)
        else:
            self._define(name, self.visit(value), declare=True)
        return []

    def _java_parameter(self, node: Node) -> list[int]:
        self._define(node.child_by_field_name("name"), [], "comesFrom", declare=True)
        return []

    def _java_resource(self, node: Node) -> list[int]:
        name = node.child_by_field_name("name")
        if name is None:  # `try (existing) {...}`: a use
            return self._children(node)
        self._define(name, self.visit(node.child_by_field_name("value")), declare=True)
        return []

    # -- functions and classes ---------------------------------------------------------

    def _c_function(self, node: Node) -> list[int]:
        declarator = node.child_by_field_name("declarator")
        while declarator is not None and declarator.type != "function_declarator":
            declarator = declarator.child_by_field_name("declarator") or _first_named(declarator)
        params = declarator.child_by_field_name("parameters") if declarator is not None else None

        def body() -> None:
            self.visit(params)
            for child in node.named_children:  # K&R parameter declarations
                if child.type == "declaration":
                    self.visit(child)
            self.visit(node.child_by_field_name("body"))

        self._isolated(body)
        return []

    def _java_method(self, node: Node) -> list[int]:
        def body() -> None:
            self.visit(node.child_by_field_name("parameters"))
            self.visit(node.child_by_field_name("body"))

        self._isolated(body)
        return []

    def _java_class_body(self, node: Node) -> list[int]:
        # Fields first: every method sees every field, whatever the order of members.
        def body() -> None:
            members = node.named_children
            for member in members:
                if member.type in self.rules.fields_first:
                    self.visit(member)
            for member in members:
                if member.type not in self.rules.fields_first:
                    self.visit(member)

        self._isolated(body)
        return []

    # -- control flow ------------------------------------------------------------------

    def _if(self, node: Node) -> list[int]:
        self.visit(node.child_by_field_name("condition"))
        entry = self.state.copy()
        self.visit(node.child_by_field_name("consequence"))
        after_then, self.state = self.state, entry
        self.visit(node.child_by_field_name("alternative"))
        self.state = _merge([after_then, self.state])
        return []

    def _loop(
        self,
        body: Node | None,
        condition: Node | None = None,
        updates: Sequence[Node] = (),
        before_body: Callable[[], None] | None = None,
        condition_first: bool = True,
    ) -> None:
        """Walk a loop twice so that uses in it also see the previous iteration's definitions."""
        entry = self.state.copy()
        back: list[_State] = []
        exits: list[_State] = []
        self.loop_depth += 1
        walks = 2 if self.loop_depth <= _MAX_TWICE_DEPTH else 1
        for _ in range(walks):
            self.state = _merge([entry, *back])
            frame = _Frame(loop=True)
            self.frames.append(frame)
            if condition_first:
                self.visit(condition)
            leave = self.state.copy()
            if before_body is not None:
                before_body()
            self.visit(body)
            self.state = _merge([self.state, *frame.continues])
            if not condition_first:
                self.visit(condition)
                leave = self.state.copy()
            for update in updates:
                self.visit(update)
            self.frames.pop()
            back = [self.state]
            exits = [leave, *frame.breaks]
        self.loop_depth -= 1
        self.state = _merge(exits)

    def _while(self, node: Node) -> list[int]:
        self._loop(node.child_by_field_name("body"), node.child_by_field_name("condition"))
        return []

    def _do(self, node: Node) -> list[int]:
        self._loop(
            node.child_by_field_name("body"), node.child_by_field_name("condition"), condition_first=False
        )
        return []

    def _for(self, node: Node) -> list[int]:
        self.scopes.append({})
        try:
            for name in ("initializer", "init"):  # C / Java field names
                for init in node.children_by_field_name(name):
                    self.visit(init)
            self._loop(
                node.child_by_field_name("body"),
                node.child_by_field_name("condition"),
                node.children_by_field_name("update"),
            )
        finally:
            self._pop_scope()
        return []

    def _java_foreach(self, node: Node) -> list[int]:
        sources = self.visit(node.child_by_field_name("value"))
        name = node.child_by_field_name("name")

        def define_element() -> None:
            self._define(name, sources, declare=True)

        self.scopes.append({})
        try:
            self._loop(node.child_by_field_name("body"), before_body=define_element)
        finally:
            self._pop_scope()
        return []

    def _switch(self, node: Node) -> list[int]:
        self.visit(node.child_by_field_name("condition"))
        body = node.child_by_field_name("body")
        entry = self.state.copy()
        frame = _Frame(loop=False)
        self.frames.append(frame)
        self.scopes.append({})
        ends: list[_State] = []
        falling: _State | None = None  # the state falling through from the previous case
        has_default = False
        try:
            for child in body.named_children if body is not None else ():
                if child.type not in self.rules.cases:
                    self.visit(child)
                    continue
                has_default = has_default or _is_default(child)
                self.state = entry.copy() if falling is None else _merge([entry, falling])
                self._children(child)
                if child.type == "switch_rule":  # `case 1 -> ...` never falls through
                    ends.append(self.state)
                    falling = None
                else:
                    falling = self.state
            if falling is not None:
                ends.append(falling)
            if not has_default:
                ends.append(entry)
            self.state = _merge([*ends, *frame.breaks])
        finally:
            self.frames.pop()
            self._pop_scope()
        return []

    def _java_try(self, node: Node) -> list[int]:
        entry = self.state.copy()
        self.scopes.append({})
        try:
            self.visit(node.child_by_field_name("resources"))
            self.visit(node.child_by_field_name("body"))
        finally:
            self._pop_scope()
        after_try = self.state
        ends = [after_try]
        for child in node.named_children:
            if child.type == "catch_clause":
                # the exception may leave the try block anywhere: approximate by both ends
                self.state = _merge([entry, after_try])
                self.visit(child)
                ends.append(self.state)
        self.state = _merge(ends)
        for child in node.named_children:
            if child.type == "finally_clause":
                self.visit(child)
        return []

    def _exit(self, node: Node) -> list[int]:
        self._children(node)
        self.state.dead = True
        return []

    def _break(self, node: Node) -> list[int]:
        if self.frames:
            self.frames[-1].breaks.append(self.state.copy())
            self.state.dead = True
        return []

    def _continue(self, node: Node) -> list[int]:
        loop = next((f for f in reversed(self.frames) if f.loop), None)
        if loop is not None:
            loop.continues.append(self.state.copy())
            self.state.dead = True
        return []

    def _labeled(self, node: Node) -> list[int]:
        children = [c for c in node.named_children if c.type not in ("identifier", "statement_identifier")]
        for child in children:
            self.visit(child)
        return []


def _first_named(node: Node, exclude: tuple[str, ...] = ()) -> Node | None:
    return next((c for c in node.named_children if c.type not in exclude and c.type not in _COMMENTS), None)


def _is_default(case: Node) -> bool:
    """A C ``default:`` case, or a Java group/rule whose label is ``default``."""
    for child in case.children:
        if child.type == "default":
            return True
        if child.type == "switch_label" and any(c.type == "default" for c in child.children):
            return True
    return False


def analyse_code(code: str, language: str) -> tuple[list[str], list[DataFlowEdge]]:
    """The snippet's tokens and one data-flow record per variable occurrence (see the module docstring)."""
    rules = _RULES[_check_language(language)]
    tree = _parse(code, language)
    leaves = _leaves(tree.root_node, rules.atomic)
    tokens = [text for _, text in leaves]
    index = {(node.start_byte, node.end_byte): i for i, (node, _) in enumerate(leaves)}
    flow = _Flow(language, index, tokens)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, _RECURSION_LIMIT))
    try:
        flow.visit(tree.root_node)
    except RecursionError:
        pass  # absurdly deep code: keep what was found (best effort, never raise on bad code)
    finally:
        sys.setrecursionlimit(limit)
    return tokens, flow.edges()


def extract_dataflow(code: str, language: str) -> list[DataFlowEdge]:
    """One edge record per variable occurrence in ``code``, sorted by token index.

    Never raises on code that does not parse: tree-sitter recovers and the walk treats
    error nodes as sequences. Raises ``AvatarError`` for an unsupported language.
    """
    return analyse_code(code, language)[1]
