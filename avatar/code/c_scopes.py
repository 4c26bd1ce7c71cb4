"""Scope analysis of C functions: what a C function declares itself (see ``avatar.code.scope_walker``)."""

from __future__ import annotations

import re

from tree_sitter import Node

from avatar.code.parsing import COMMENTS
from avatar.code.scope_walker import _Walker, is_macro_like

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
        if child.type != "type_qualifier" and child.type not in _C_ATTRIBUTES and child.type not in COMMENTS:
            return child
    return None


class _CWalker(_Walker):
    literals = frozenset({"string_literal", "char_literal", "system_lib_string"})
    declaring = frozenset({"declaration", "parameter_declaration", "parameter_list"})
    opaque = COMMENTS | frozenset(
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
            elif enumerator.type not in COMMENTS:
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
        with self.scope():
            for param in node.named_children:
                if param.type == "parameter_declaration":
                    self._specifiers(param)
                    self._declarator(param.child_by_field_name("declarator"), "prototype", False)
                elif param.type not in COMMENTS and param.type != "variadic_parameter":
                    self.mark_unsafe_text(param)

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
            elif param.type not in COMMENTS and param.type != "variadic_parameter":
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
        with self.scope():
            self._parameters(params)
            for child in node.named_children:  # K&R parameter declarations
                if child.type == "declaration":
                    self._kr_declaration(child)
            self.visit(node.child_by_field_name("body"))

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
            if argument.type in COMMENTS:
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
