"""Scope analysis of one C or Java function: which identifier occurrences are its own names.

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
from collections.abc import Callable
from dataclasses import dataclass, field

from tree_sitter import Node

WORD = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
"""An identifier-like word (Java allows ``$``; C compilers accept it too)."""

_MACRO_LIKE = re.compile(r"_*[A-Z][A-Z0-9_]*")

_COMMENTS = frozenset({"comment", "line_comment", "block_comment"})


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
            if current.type in _COMMENTS or current.type in self.literals:
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

    def scoped(self, node: Node) -> None:
        self.push()
        try:
            self.children(node)
        finally:
            self.pop()

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


# ---------------------------------------------------------------------------------------
# Java


# Methods whose name is their meaning to the JVM or to every caller: an entry point, or an
# override of java.lang.Object's methods (with or without @Override).
_JAVA_KEPT_METHODS = frozenset({"main", "equals", "hashCode", "toString", "clone", "finalize"})


def _has_override(modifiers: Node | None, walker: _Walker) -> bool:
    if modifiers is None:
        return False
    for child in modifiers.named_children:
        if child.type in ("marker_annotation", "annotation"):
            name = child.child_by_field_name("name")
            if name is not None and walker.text(name).rsplit(".", 1)[-1] == "Override":
                return True
    return False


class _JavaWalker(_Walker):
    literals = frozenset({"string_literal", "character_literal"})
    declaring = frozenset(
        {
            "local_variable_declaration", "formal_parameter", "catch_formal_parameter", "spread_parameter",
            "resource", "enhanced_for_statement", "inferred_parameters", "field_declaration",
        }
    )
    opaque = _COMMENTS | frozenset(
        {
            "type_identifier", "integral_type", "floating_point_type", "boolean_type", "void_type",
            "generic_type", "array_type", "scoped_type_identifier", "type_arguments",
            "type_parameters", "dimensions", "superclass", "super_interfaces", "extends_interfaces",
            "permits", "throws", "decimal_integer_literal", "hex_integer_literal",
            "octal_integer_literal", "binary_integer_literal", "decimal_floating_point_literal",
            "hex_floating_point_literal", "character_literal", "true", "false",
            "null_literal", "this", "super", "class_literal", "import_declaration",
            "package_declaration", "module_declaration", "receiver_parameter", "catch_type",
            "break_statement", "continue_statement",
        }
    )

    def __init__(self, source: bytes) -> None:
        super().__init__(source)
        self.class_depth = 0
        # the method being renamed: its binding, parameter count, whether it is variadic
        self.subject: Binding | None = None
        self.subject_arity: tuple[int, bool] = (0, False)
        self.handlers = {
            "method_declaration": self._method,
            "constructor_declaration": self._method,
            "compact_constructor_declaration": self._method,
            "formal_parameter": self._parameter,
            "catch_formal_parameter": self._parameter,
            "spread_parameter": self._spread_parameter,
            "local_variable_declaration": self._local_declaration,
            "block": self.scoped,
            "constructor_body": self.scoped,
            "switch_block": self.scoped,
            "for_statement": self.scoped,
            "catch_clause": self.scoped,
            "enhanced_for_statement": self._foreach,
            "try_with_resources_statement": self._try_with_resources,
            "resource": self._resource,
            "lambda_expression": self._lambda,
            "method_invocation": self._invocation,
            "field_access": self._field_access,
            "method_reference": self._method_reference,
            "labeled_statement": self._labeled,
            "modifiers": self.mark_unsafe,  # annotations (and their arguments) are constants
            "annotation": self.mark_unsafe,
            "marker_annotation": self.mark_unsafe,
            "scoped_identifier": self.mark_unsafe,
            "switch_label": self.mark_unsafe,  # `case FOO:` is an enum constant, not a local
            "string_literal": self._string,
            "class_declaration": self._type_declaration,
            "interface_declaration": self._type_declaration,
            "enum_declaration": self._type_declaration,
            "record_declaration": self._type_declaration,
            "annotation_type_declaration": self._type_declaration,
            "class_body": self._class_body,
            "interface_body": self._class_body,
            "enum_body": self._class_body,
            "annotation_type_body": self._class_body,
            "instanceof_expression": self._instanceof,
            "object_creation_expression": self._object_creation,
        }

    # -- methods -----------------------------------------------------------------------

    def _method(self, node: Node) -> None:
        name = node.child_by_field_name("name")
        params = node.child_by_field_name("parameters")
        if node.type == "method_declaration" and self.class_depth == 0 and name is not None:
            # The function being transformed: its name may be renamed with its recursive calls.
            # An @Override method must keep its name (it would no longer override anything).
            modifiers = next((c for c in node.named_children if c.type == "modifiers"), None)
            text = self.text(name)
            keep = text in _JAVA_KEPT_METHODS or _has_override(modifiers, self)
            self.subject = Binding(text, "method", not keep, "method")
            self.subject.spans.append((name.start_byte, name.end_byte))
            listed = [
                c for c in (params.named_children if params is not None else [])
                if c.type in ("formal_parameter", "spread_parameter")
            ]
            self.subject_arity = (len(listed), any(c.type == "spread_parameter" for c in listed))
            self.bindings.append(self.subject)
        for child in node.named_children:
            if child.type == "modifiers":
                self.mark_unsafe(child)
        self.push()
        try:
            self.visit(params)
            self.visit(node.child_by_field_name("body"))
        finally:
            self.pop()

    def _parameter(self, node: Node) -> None:
        for child in node.named_children:
            if child.type == "modifiers":
                self.mark_unsafe(child)
        name = node.child_by_field_name("name")
        if name is not None:
            self.declare(name, "parameter", True)

    def _spread_parameter(self, node: Node) -> None:
        for child in node.named_children:
            if child.type == "modifiers":
                self.mark_unsafe(child)
            elif child.type == "variable_declarator":
                name = child.child_by_field_name("name")
                if name is not None:
                    self.declare(name, "parameter", True)

    def _declarators(self, node: Node, kind: str, renamable: bool, values: bool = True) -> None:
        for child in node.named_children:
            if child.type == "modifiers":
                self.mark_unsafe(child)
            elif child.type == "variable_declarator":
                name = child.child_by_field_name("name")
                if name is not None:
                    self.declare(name, kind, renamable)  # in scope in its own initialiser
                if values:
                    self.visit(child.child_by_field_name("value"))
            elif child.type == "ERROR":
                self.mark_unsafe(child)

    def _local_declaration(self, node: Node) -> None:
        self._declarators(node, "local", True)

    def _foreach(self, node: Node) -> None:
        self.visit(node.child_by_field_name("value"))  # evaluated outside the loop variable's scope
        self.push()
        try:
            for child in node.named_children:
                if child.type == "modifiers":
                    self.mark_unsafe(child)
            name = node.child_by_field_name("name")
            if name is not None:
                self.declare(name, "local", True)
            self.visit(node.child_by_field_name("body"))
        finally:
            self.pop()

    def _try_with_resources(self, node: Node) -> None:
        self.push()  # resources are in scope in the try block, not in catch or finally
        try:
            self.visit(node.child_by_field_name("resources"))
            self.visit(node.child_by_field_name("body"))
        finally:
            self.pop()
        for child in node.named_children:
            if child.type in ("catch_clause", "finally_clause"):
                self.visit(child)

    def _resource(self, node: Node) -> None:
        name = node.child_by_field_name("name")
        if name is None:  # `try (existing)`: a use
            self.children(node)
            return
        for child in node.named_children:
            if child.type == "modifiers":
                self.mark_unsafe(child)
        self.declare(name, "local", True)
        self.visit(node.child_by_field_name("value"))

    def _lambda(self, node: Node) -> None:
        self.push()
        try:
            params = node.child_by_field_name("parameters")
            if params is not None and params.type == "identifier":
                self.declare(params, "parameter", True)
            elif params is not None and params.type == "inferred_parameters":
                for param in params.named_children:
                    if param.type == "identifier":
                        self.declare(param, "parameter", True)
                    else:
                        self.mark_unsafe(param)
            else:
                self.visit(params)
            self.visit(node.child_by_field_name("body"))
        finally:
            self.pop()

    # -- expressions -------------------------------------------------------------------

    def _invocation(self, node: Node) -> None:
        receiver = node.child_by_field_name("object")
        self.visit(receiver)
        name = node.child_by_field_name("name")
        if self.subject is not None and name is not None and self.text(name) == self.subject.text:
            self._call_of_subject(node, name, receiver)
        self.visit(node.child_by_field_name("arguments"))

    def _call_of_subject(self, node: Node, name: Node, receiver: Node | None) -> None:
        """A call by the method's own name: a recursive call, renamed with it, if unambiguous."""
        assert self.subject is not None
        if receiver is not None and receiver.type != "this":
            if receiver.type == "identifier" and self.resolve(self.text(receiver)) is not None:
                return  # `other.copy(...)` on a local object: another object's method
            if receiver.type == "identifier" and self.text(receiver)[:1].islower():
                return  # a field holding another object
            self.subject.renamable = False  # `Outer.copy(...)` may be a static recursive call
            return
        if self.class_depth > 0:  # inside a local/anonymous class: maybe one of its own methods
            self.subject.renamable = False
            return
        arguments = node.child_by_field_name("arguments")
        count = len([c for c in arguments.named_children if c.type not in _COMMENTS]) if arguments else 0
        arity, variadic = self.subject_arity
        if count == arity or (variadic and count >= arity - 1):
            self.subject.spans.append((name.start_byte, name.end_byte))
        else:  # an overload with another arity: renaming the method would rebind or break it
            self.subject.renamable = False

    def _field_access(self, node: Node) -> None:
        self.visit(node.child_by_field_name("object"))  # the field name is never a variable

    def _method_reference(self, node: Node) -> None:
        children = node.named_children
        if children:
            self.visit(children[0])  # `list::add`: the receiver may be a local
        subject = self.subject
        for child in children[1:]:
            if child.type == "identifier" and subject is not None and self.text(child) == subject.text:
                subject.renamable = False  # `this::copy` / `Outer::copy`: keep the name

    def _labeled(self, node: Node) -> None:
        for child in node.named_children[1:]:  # the label is its own namespace
            self.visit(child)

    def _string(self, node: Node) -> None:
        if any(c.type == "string_interpolation" for c in node.named_children):
            self.mark_unsafe(node)  # string templates hold expressions: do not guess

    def _instanceof(self, node: Node) -> None:
        self.visit(node.child_by_field_name("left"))
        name = node.child_by_field_name("name")
        if name is not None:  # `o instanceof String s`: s is in scope in the rest of the block
            self.declare(name, "local", True)
        pattern = node.child_by_field_name("pattern")
        if pattern is not None:
            self._pattern(pattern)

    def _pattern(self, node: Node) -> None:
        stack = [node]
        while stack:
            current = stack.pop()
            if current.type == "identifier" and current.parent is not None and current.parent.type in (
                "type_pattern", "record_pattern_component"
            ):
                self.declare(current, "local", True)
            elif current.type == "ERROR":
                self.mark_unsafe(current)
            else:
                stack.extend(current.named_children)

    # -- classes inside the method -------------------------------------------------------

    def _type_declaration(self, node: Node) -> None:
        for child in node.named_children:
            if child.type == "modifiers":
                self.mark_unsafe(child)
        self.push()
        try:
            params = node.child_by_field_name("parameters")  # record components are fields
            if node.type == "record_declaration" and params is not None:
                self.class_depth += 1
                try:
                    for param in params.named_children:
                        name = param.child_by_field_name("name")
                        if name is not None:
                            self.declare(name, "field", False)
                finally:
                    self.class_depth -= 1
            self.visit(node.child_by_field_name("body"))
        finally:
            self.pop()

    def _object_creation(self, node: Node) -> None:
        for i, child in enumerate(node.children):  # the created type is not a variable
            if child.type in ("argument_list", "class_body") or node.field_name_for_child(i) == "object":
                self.visit(child)

    def _class_body(self, node: Node) -> None:
        """A local or anonymous class: its fields hide outer locals; its methods keep their names."""
        self.class_depth += 1
        self.push()
        try:
            members = node.named_children
            for member in self._members(members):
                if member.type in ("field_declaration", "constant_declaration"):
                    self._declarators(member, "field", False, values=False)
                elif member.type == "enum_constant":
                    name = member.child_by_field_name("name")
                    if name is not None:
                        self.declare(name, "enumerator", False)
            for member in self._members(members):
                if member.type in ("field_declaration", "constant_declaration"):
                    for child in member.named_children:
                        if child.type == "variable_declarator":
                            self.visit(child.child_by_field_name("value"))
                elif member.type == "enum_constant":
                    for child in member.named_children:
                        if child.type in ("argument_list", "class_body"):
                            self.visit(child)
                else:
                    self.visit(member)
        finally:
            self.pop()
            self.class_depth -= 1

    @staticmethod
    def _members(members: list[Node]) -> list[Node]:
        out: list[Node] = []
        for member in members:
            if member.type == "enum_body_declarations":
                out.extend(member.named_children)
            else:
                out.append(member)
        return out


# ---------------------------------------------------------------------------------------
# C

# Lower-case function-like macros (or builtins) whose listed arguments are not expressions:
# a bare identifier there may be a member or type name, or be pasted into another token.
_C_SPECIAL_CALLS: dict[str, tuple[int, ...] | None] = {
    "va_arg": (1,),
    "offsetof": None,
    "container_of": (1, 2),
    "glue": None,
    "xglue": None,
    "stringify": None,
    "tostring": None,
    "typeof": None,
    "__typeof__": None,
    "__builtin_offsetof": None,
    "__builtin_types_compatible_p": None,
}

_C_STRUCTURED_TYPES = frozenset({"struct_specifier", "union_specifier"})
_C_ATTRIBUTES = frozenset(
    {
        "attribute_specifier", "attribute_declaration", "ms_declspec_modifier", "ms_call_modifier",
        "ms_based_modifier", "ms_pointer_modifier", "ms_restrict_modifier", "ms_unsigned_ptr_modifier",
        "ms_signed_ptr_modifier", "macro_type_specifier", "gnu_asm_expression", "ERROR",
    }
)
_C_PLAIN_TYPES = frozenset(
    {"primitive_type", "type_identifier", "sized_type_specifier", "type_qualifier", "storage_class_specifier"}
)


_C_WRAPPING_DECLARATORS = frozenset(
    {"pointer_declarator", "parenthesized_declarator", "attributed_declarator"}
)


def _first_declarator(node: Node) -> Node | None:
    """The declarator inside a wrapper that has no ``declarator`` field (parentheses, attributes)."""
    for child in node.named_children:
        if child.type != "type_qualifier" and child.type not in _C_ATTRIBUTES and child.type not in _COMMENTS:
            return child
    return None


class _CWalker(_Walker):
    literals = frozenset({"string_literal", "char_literal", "system_lib_string"})
    declaring = frozenset({"declaration", "parameter_declaration", "parameter_list"})
    opaque = _COMMENTS | frozenset(
        {
            "primitive_type", "type_identifier", "sized_type_specifier", "type_descriptor",
            "type_definition", "field_identifier", "statement_identifier", "number_literal",
            "string_literal", "char_literal", "system_lib_string", "true", "false", "null",
            "storage_class_specifier", "type_qualifier", "struct_specifier", "union_specifier",
            "abstract_pointer_declarator", "abstract_array_declarator",
            "abstract_function_declarator", "abstract_parenthesized_declarator",
            "goto_statement", "offsetof_expression", "break_statement", "continue_statement",
        }
    )

    def __init__(self, source: bytes) -> None:
        super().__init__(source)
        self.handlers = {
            "function_definition": self._function,
            "declaration": self._declaration,
            "compound_statement": self.scoped,
            "for_statement": self.scoped,
            "call_expression": self._call,
            "field_expression": self._field,
            "labeled_statement": self._labeled,
            "enum_specifier": self._enum,
            "concatenated_string": self._concatenated_string,
            "preproc_def": self.mark_unsafe_text,
            "preproc_function_def": self.mark_unsafe_text,
            "preproc_call": self.mark_unsafe_text,
            "preproc_include": self.mark_unsafe_text,
            "preproc_defined": self.mark_unsafe_text,
            "preproc_if": self._preproc_conditional,
            "preproc_ifdef": self._preproc_conditional,
            "preproc_elif": self._preproc_conditional,
            "preproc_elifdef": self._preproc_conditional,
            "gnu_asm_expression": self.mark_unsafe_text,
            "attribute_specifier": self.mark_unsafe_text,
            "attribute_declaration": self.mark_unsafe_text,
            "ms_declspec_modifier": self.mark_unsafe_text,
            "ms_based_modifier": self.mark_unsafe_text,
            "macro_type_specifier": self.mark_unsafe_text,
            "parameter_list": self._prototype_parameters,
        }

    # -- declarations --------------------------------------------------------------------

    def _specifiers(self, node: Node) -> None:
        """The type and attributes of a declaration, parameter or function definition.

        Declarators, bodies and K&R parameter declarations are left to the caller; storage
        classes and qualifiers hold no names.
        """
        for i, child in enumerate(node.children):
            if not child.is_named:
                continue
            if node.field_name_for_child(i) == "type":
                self._type(child)
            elif child.type in _C_ATTRIBUTES:
                self.mark_unsafe_text(child)

    def _type(self, node: Node) -> None:
        if node.type in _C_PLAIN_TYPES:
            return
        if node.type in _C_STRUCTURED_TYPES:
            if node.has_error:
                self.mark_unsafe(node)
            return  # member names are field_identifiers; sizes are constants
        if node.type == "enum_specifier":
            self._enum(node)
            return
        self.mark_unsafe_text(node)  # typeof(...), macro types, errors: their words are unknown

    def _enum(self, node: Node) -> None:
        body = node.child_by_field_name("body")
        if body is None:
            return
        for enumerator in body.named_children:
            if enumerator.type == "enumerator":
                name = enumerator.child_by_field_name("name")
                if name is not None:
                    self.declare(name, "enumerator", False)
                self.visit(enumerator.child_by_field_name("value"))
            elif enumerator.type not in _COMMENTS:
                self.visit(enumerator)

    def _declaration(self, node: Node) -> None:
        extern = any(c.type == "storage_class_specifier" and self.text(c) == "extern" for c in node.children)
        at_file_scope = len(self.scopes) == 1
        self._specifiers(node)
        renamable = not extern and not at_file_scope
        kind = "extern" if extern else "global" if at_file_scope else "local"
        for i, child in enumerate(node.children):
            if node.field_name_for_child(i) == "declarator":
                self._declarator(child, kind, renamable)

    def _declarator(self, node: Node | None, kind: str, renamable: bool, function_type: bool = False) -> None:
        """Declare the name of a C declarator (through pointers, arrays, parentheses, init).

        ``function_type``: a ``function_declarator`` was passed with no pointer since, so an
        identifier here names a function prototype (never renamed), not a variable.
        """
        while node is not None:
            kind_of = node.type
            if kind_of == "identifier":
                if function_type:
                    self.declare(node, "prototype", False)
                else:
                    self.declare(node, kind, renamable)
                return
            if kind_of == "init_declarator":
                self._declarator(node.child_by_field_name("declarator"), kind, renamable, function_type)
                self.visit(node.child_by_field_name("value"))  # the new name is in scope here
                return
            if kind_of == "function_declarator":
                self._prototype_parameters(node.child_by_field_name("parameters"))
                for child in node.named_children:
                    if child.type in _C_ATTRIBUTES:
                        self.mark_unsafe_text(child)
                node, function_type = node.child_by_field_name("declarator"), True
                continue
            if kind_of in ("pointer_declarator", "array_declarator", "parenthesized_declarator",
                           "attributed_declarator"):
                inner = node.child_by_field_name("declarator")
                for child in node.named_children:
                    if child.type in _C_ATTRIBUTES:
                        self.mark_unsafe_text(child)
                if kind_of == "array_declarator":
                    self.visit(node.child_by_field_name("size"))
                if inner is None:
                    inner = _first_declarator(node)
                if kind_of in ("pointer_declarator", "array_declarator"):
                    function_type = False  # a pointer to (or array of pointers to) a function
                node = inner
                continue
            # a macro or an error where a declarator should be: its words are unknown
            self.mark_unsafe_text(node)
            return

    def _prototype_parameters(self, node: Node | None) -> None:
        """Parameters of a prototype or function-pointer type: names local to the prototype."""
        if node is None:
            return
        self.push()
        try:
            for param in node.named_children:
                if param.type == "parameter_declaration":
                    self._specifiers(param)
                    self._declarator(param.child_by_field_name("declarator"), "prototype", False)
                elif param.type not in _COMMENTS and param.type != "variadic_parameter":
                    self.mark_unsafe_text(param)
        finally:
            self.pop()

    def _parameters(self, node: Node | None) -> None:
        """Parameters of the function being defined: renamable, in the function's scope."""
        if node is None:
            return
        if node.has_error:
            self.mark_unsafe(node)
        for param in node.named_children:
            if param.type == "parameter_declaration":
                self._specifiers(param)
                self._declarator(param.child_by_field_name("declarator"), "parameter", True)
            elif param.type == "identifier":  # K&R: `f(a, b) int a; char *b; {...}`
                self.declare(param, "parameter", True)
            elif param.type not in _COMMENTS and param.type != "variadic_parameter":
                self.mark_unsafe_text(param)

    def _function(self, node: Node) -> None:
        self._specifiers(node)
        declarator = node.child_by_field_name("declarator")
        # down to the function_declarator: `int *f(...)` is a pointer_declarator around it
        while declarator is not None and declarator.type != "function_declarator":
            if declarator.type not in _C_WRAPPING_DECLARATORS:
                self.mark_unsafe_text(declarator)
                declarator = None
                break
            declarator = declarator.child_by_field_name("declarator") or _first_declarator(declarator)
        params = None
        if declarator is not None:
            name = declarator.child_by_field_name("declarator")
            params = declarator.child_by_field_name("parameters")
            for i, child in enumerate(declarator.children):
                if child.is_named and declarator.field_name_for_child(i) not in ("declarator", "parameters"):
                    self.mark_unsafe_text(child)  # attributes, asm labels after the parameters
            if name is not None and name.type == "identifier":
                text = self.text(name)
                # a function named by a macro (ALL_CAPS) or one that reads its own name
                # (__func__) keeps it; otherwise it is renamed with its recursive calls
                renamable = (
                    text != "main"
                    and not is_macro_like(text)
                    and not re.search(rb"\b__(func|FUNCTION|PRETTY_FUNCTION)__\b", self.src)
                )
                self.declare(name, "function", renamable)
            elif name is not None:
                self.mark_unsafe_text(name)
        self.push()
        try:
            self._parameters(params)
            for child in node.named_children:  # K&R parameter declarations
                if child.type == "declaration":
                    self._kr_declaration(child)
            self.visit(node.child_by_field_name("body"))
        finally:
            self.pop()

    def _kr_declaration(self, node: Node) -> None:
        if node.has_error:
            self.mark_unsafe(node)
        self._specifiers(node)
        for i, child in enumerate(node.children):
            if node.field_name_for_child(i) == "declarator":
                self._declarator(child, "parameter", True)

    # -- expressions ---------------------------------------------------------------------

    def _call(self, node: Node) -> None:
        function = node.child_by_field_name("function")
        arguments = node.child_by_field_name("arguments")
        opaque_args: tuple[int, ...] | None = ()
        if function is not None and function.type == "identifier":
            name = self.text(function)
            if is_macro_like(name):
                opaque_args = None  # a macro: a bare identifier argument may be anything
            elif name in _C_SPECIAL_CALLS:
                opaque_args = _C_SPECIAL_CALLS[name]
            else:
                self.use(function)  # a local function pointer, the function itself, or free
        else:
            self.visit(function)
        if arguments is None:
            return
        position = 0
        for argument in arguments.named_children:
            if argument.type in _COMMENTS:
                continue
            if opaque_args is None or position in opaque_args:
                if argument.type == "identifier":
                    self.unsafe.add(self.text(argument))
                elif argument.type in ("type_descriptor", "primitive_type", "sized_type_specifier"):
                    pass
                else:
                    self.visit(argument)
            else:
                self.visit(argument)
            position += 1

    def _field(self, node: Node) -> None:
        self.visit(node.child_by_field_name("argument"))

    def _labeled(self, node: Node) -> None:
        for child in node.named_children:
            if child.type not in ("statement_identifier", "identifier"):
                self.visit(child)

    def _concatenated_string(self, node: Node) -> None:
        for child in node.named_children:
            if child.type == "identifier":  # `"%" PRId64`: a macro
                self.unsafe.add(self.text(child))

    def _preproc_conditional(self, node: Node) -> None:
        for i, child in enumerate(node.children):
            if not child.is_named:
                continue
            if node.field_name_for_child(i) in ("condition", "name"):
                self.mark_unsafe_text(child)
            else:
                self.visit(child)


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
