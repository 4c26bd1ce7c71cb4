"""Data-flow graphs of C and Java code: GraphCodeBERT's extra input (the tensors: ``code.graphcodebert``).

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
* ``avatar.code.graphcodebert`` turns them into model inputs (``graph_inputs``) and runs a
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

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tree_sitter import Node

from avatar.code.control_flow import ControlFlow, Frame, State, first_named
from avatar.code.parsing import (
    RULES,
    check_language,
    leaves,
    parse,
)

# Deep else-if chains and long operator chains nest the tree deeply; the walker recurses.
_RECURSION_LIMIT = 20_000


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
# The analysis


class _Flow(ControlFlow):
    """Walks one parse tree and records, per variable occurrence, where its value comes from.

    ``visit`` returns the token indices of the variable occurrences whose values make up
    the node's value: for ``a + f(b)`` that is ``[a, b]``, for ``x = y`` it is ``[x]``.
    """

    def __init__(self, language: str, index: dict[tuple[int, int], int], tokens: list[str]) -> None:
        self.rules = RULES[language]
        self.index = index
        self.tokens = tokens
        self.state = State({})
        self.scopes: list[dict[str, frozenset[int] | None]] = [{}]
        self.frames: list[Frame] = []
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
        arg = node.child_by_field_name("argument") or first_named(node)
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
                node = first_named(node)
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
        receiver = first_named(node)
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
                node = node.child_by_field_name("declarator") or first_named(
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
            declarator = declarator.child_by_field_name("declarator") or first_named(declarator)
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

def analyse_code(code: str, language: str) -> tuple[list[str], list[DataFlowEdge]]:
    """The snippet's tokens and one data-flow record per variable occurrence (see the module docstring)."""
    rules = RULES[check_language(language)]
    tree = parse(code, language)
    found = leaves(tree.root_node, rules.atomic)
    tokens = [text for _, text in found]
    index = {(node.start_byte, node.end_byte): i for i, (node, _) in enumerate(found)}
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
