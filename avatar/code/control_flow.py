"""Control flow for the data-flow analysis: branches, loops, switches, jumps and ``try``.

The state is the set of reaching definitions; branches run on copies that merge (union),
loop bodies run twice so uses see the previous iteration, and ``break``/``continue``
hand their states to the enclosing loop or switch. ``ControlFlow`` is the half of the
walker (``avatar.code.dataflow._Flow``) that handles statements which route states; the
other half records definitions and uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tree_sitter import Node

from avatar.code.parsing import COMMENTS, Rules

# Walking each loop twice costs 2**depth for nested loops: deeper ones are walked once.
MAX_TWICE_DEPTH = 8


@dataclass
class State:
    """Reaching definitions: name -> token indices of the definitions that may reach here."""

    defs: dict[str, frozenset[int]]
    dead: bool = False  # after return/break/continue/throw: ignored when paths merge

    def copy(self) -> State:
        return State(dict(self.defs), self.dead)


def merge(states: Sequence[State]) -> State:
    live = [s for s in states if not s.dead]
    defs: dict[str, frozenset[int]] = {}
    for state in live or states:
        for name, where in state.defs.items():
            defs[name] = defs.get(name, frozenset()) | where
    return State(defs, dead=not live)


@dataclass
class Frame:
    """A loop or switch: where ``break`` and ``continue`` send their states."""

    loop: bool
    breaks: list[State] = field(default_factory=list)
    continues: list[State] = field(default_factory=list)


class ControlFlow:
    """Statement handlers that route reaching-definition states (mixed into the walker)."""

    # set by the walker (avatar.code.dataflow._Flow)
    rules: Rules
    state: State
    frames: list[Frame]
    loop_depth: int
    visit: Callable[[Node | None], list[int]]


    def _if(self, node: Node) -> list[int]:
        self.visit(node.child_by_field_name("condition"))
        entry = self.state.copy()
        self.visit(node.child_by_field_name("consequence"))
        after_then, self.state = self.state, entry
        self.visit(node.child_by_field_name("alternative"))
        self.state = merge([after_then, self.state])
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
        back: list[State] = []
        exits: list[State] = []
        self.loop_depth += 1
        walks = 2 if self.loop_depth <= MAX_TWICE_DEPTH else 1
        for _ in range(walks):
            self.state = merge([entry, *back])
            frame = Frame(loop=True)
            self.frames.append(frame)
            if condition_first:
                self.visit(condition)
            leave = self.state.copy()
            if before_body is not None:
                before_body()
            self.visit(body)
            self.state = merge([self.state, *frame.continues])
            if not condition_first:
                self.visit(condition)
                leave = self.state.copy()
            for update in updates:
                self.visit(update)
            self.frames.pop()
            back = [self.state]
            exits = [leave, *frame.breaks]
        self.loop_depth -= 1
        self.state = merge(exits)

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
        frame = Frame(loop=False)
        self.frames.append(frame)
        self.scopes.append({})
        ends: list[State] = []
        falling: State | None = None  # the state falling through from the previous case
        has_default = False
        try:
            for child in body.named_children if body is not None else ():
                if child.type not in self.rules.cases:
                    self.visit(child)
                    continue
                has_default = has_default or is_default(child)
                self.state = entry.copy() if falling is None else merge([entry, falling])
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
            self.state = merge([*ends, *frame.breaks])
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
                self.state = merge([entry, after_try])
                self.visit(child)
                ends.append(self.state)
        self.state = merge(ends)
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


def first_named(node: Node, exclude: tuple[str, ...] = ()) -> Node | None:
    return next((c for c in node.named_children if c.type not in exclude and c.type not in COMMENTS), None)


def is_default(case: Node) -> bool:
    """A C ``default:`` case, or a Java group/rule whose label is ``default``."""
    for child in case.children:
        if child.type == "default":
            return True
        if child.type == "switch_label" and any(c.type == "default" for c in child.children):
            return True
    return False
