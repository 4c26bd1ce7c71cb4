"""Scope analysis of Java methods: what a Java method declares itself (see ``avatar.code.scope_walker``)."""

from __future__ import annotations

from tree_sitter import Node

from avatar.code.parsing import COMMENTS
from avatar.code.scope_walker import Binding, _Walker

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
    opaque = COMMENTS | frozenset(
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
        with self.scope():
            self.visit(params)
            self.visit(node.child_by_field_name("body"))

    def _declare_own_name(self, node: Node, kind: str) -> None:
        """A parameter's or loop variable's ``name`` (its annotations' words are never renamed)."""
        for child in node.named_children:
            if child.type == "modifiers":
                self.mark_unsafe(child)
        name = node.child_by_field_name("name")
        if name is not None:
            self.declare(name, kind, True)

    def _parameter(self, node: Node) -> None:
        self._declare_own_name(node, "parameter")

    def _spread_parameter(self, node: Node) -> None:  # `int... values`: a declarator without a value
        self._declarators(node, "parameter", True, values=False)

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
        with self.scope():
            self._declare_own_name(node, "local")
            self.visit(node.child_by_field_name("body"))

    def _try_with_resources(self, node: Node) -> None:
        with self.scope():  # resources are in scope in the try block, not in catch or finally
            self.visit(node.child_by_field_name("resources"))
            self.visit(node.child_by_field_name("body"))
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
        with self.scope():
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
        count = len([c for c in arguments.named_children if c.type not in COMMENTS]) if arguments else 0
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
        with self.scope():
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

    def _object_creation(self, node: Node) -> None:
        for i, child in enumerate(node.children):  # the created type is not a variable
            if child.type in ("argument_list", "class_body") or node.field_name_for_child(i) == "object":
                self.visit(child)

    def _class_body(self, node: Node) -> None:
        """A local or anonymous class: its fields hide outer locals; its methods keep their names."""
        self.class_depth += 1
        with self.scope():
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
