"""Parsing C and Java with tree-sitter: the grammars, each language's rules, and leaf tokens.

Why a module of its own: the data-flow analysis, the metamorphic transforms and the
function extraction of ``avatar scan`` all walk the same parse trees with the same idea of
a token (comments dropped, a literal one token) and of which nodes hold no variables.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tree_sitter_c
import tree_sitter_java
from tree_sitter import Language, Node, Parser, Tree

from avatar.core.errors import AvatarError

SUPPORTED_LANGUAGES: tuple[str, ...] = ("c", "java")

_GRAMMARS: dict[str, Callable[[], Any]] = {"c": tree_sitter_c.language, "java": tree_sitter_java.language}


# Language rules: which nodes hold no variables, which fields are names, what is a block.


@dataclass(frozen=True)
class Rules:
    atomic: frozenset[str]  # subtrees that are one token (literals)
    opaque: frozenset[str]  # subtrees that hold no variable occurrence
    skip_fields: dict[str, frozenset[str]]  # per node type: fields that are names or types
    projections: dict[str, str]  # lvalue node type -> field of its base ("" = first child)
    blocks: frozenset[str]
    cases: frozenset[str]
    fields_first: frozenset[str]  # class members analysed before the methods


COMMENTS = frozenset({"comment", "line_comment", "block_comment"})

_C_RULES = Rules(
    atomic=frozenset({"string_literal", "char_literal", "system_lib_string"}),
    opaque=COMMENTS
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

_JAVA_RULES = Rules(
    atomic=frozenset({"string_literal", "character_literal"}),
    opaque=COMMENTS
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

RULES = {"c": _C_RULES, "java": _JAVA_RULES}


# ---------------------------------------------------------------------------------------
# Parsing and tokens


def check_language(language: str) -> str:
    if language not in _GRAMMARS:
        raise AvatarError(
            f"unsupported language {language!r} for data flow; supported: {', '.join(SUPPORTED_LANGUAGES)}"
        )
    return language


@functools.cache
def parser(language: str) -> Parser:
    return Parser(Language(_GRAMMARS[language]()))


def parser_for(language: str) -> Parser:
    """The shared, cached tree-sitter parser of ``language`` (``AvatarError`` if unsupported):
    the data flow, the transforms and function extraction parse exactly alike."""
    return parser(check_language(language))


def parse(code: str, language: str) -> Tree:
    # errors="replace": a str with lone surrogates must not make extraction raise
    return parser(language).parse(code.encode("utf-8", errors="replace"))


def leaves(root: Node, atomic: frozenset[str]) -> list[tuple[Node, str]]:
    """Leaves in source order with their text; iterative, so any nesting depth is fine."""
    out: list[tuple[Node, str]] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type in COMMENTS:
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
    check_language(language)
    return [text for _, text in leaves(parse(code, language).root_node, RULES[language].atomic)]
