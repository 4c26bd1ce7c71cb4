"""The variables constraints are written over: symbolic for z3, or plain values for one candidate.

Constraint plugins write one expression over an abstract ``Vars``. Two backends give it
meaning: ``Z3Vars`` (symbolic: the solver's assertions) and ``ValueVars`` (plain values:
one candidate, or numpy arrays over a slice of the grid, which is how ``Pruner.count_grid``
counts exactly and how the tests check z3 against an oracle).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import z3

from avatar.core.errors import AvatarError
from avatar.search.space import DEFAULTS, Candidate, Space

# ---------------------------------------------------------------------------- backends


class Vars(ABC):
    """What a constraint expression may use: dimension values, membership, arithmetic."""

    num_labels: int

    @abstractmethod
    def value(self, name: str) -> Any:
        """The numeric value of a dimension."""

    @abstractmethod
    def is_(self, name: str, choice: Any) -> Any:
        """Whether a dimension takes ``choice``."""

    @abstractmethod
    def div(self, a: Any, b: Any) -> Any:
        """Integer (floor) division of positive integers."""

    @abstractmethod
    def where(self, condition: Any, then: Any, otherwise: Any) -> Any: ...

    @abstractmethod
    def all(self, conditions: Sequence[Any]) -> Any: ...

    @abstractmethod
    def any(self, conditions: Sequence[Any]) -> Any: ...


class Z3Vars(Vars):
    """Symbolic values: integer dimensions by value, the others by choice index."""

    def __init__(self, space: Space, num_labels: int) -> None:
        self.space = space
        self.num_labels = num_labels
        self.symbols: dict[str, z3.ArithRef] = {}
        self.domain: list[z3.BoolRef] = []
        for dim in space.dimensions:
            if dim.is_integer:
                symbol = z3.Int(dim.name)
                self.domain.append(z3.Or([symbol == v for v in dim.choices]))
            else:
                symbol = z3.Int(f"{dim.name}#index")
                self.domain.append(z3.And(symbol >= 0, symbol < len(dim)))
            self.symbols[dim.name] = symbol

    def pin(self, name: str, index: int) -> z3.BoolRef:
        """The assertion that dimension ``name`` takes its ``index``-th choice."""
        dim = self.space.by_name[name]
        symbol = self.symbols[name]
        return symbol == (dim.choices[index] if dim.is_integer else index)

    def index_of(self, model: z3.ModelRef, name: str) -> int:
        dim = self.space.by_name[name]
        raw = model.eval(self.symbols[name], model_completion=True).as_long()
        return dim.choices.index(raw) if dim.is_integer else raw

    def value(self, name: str) -> Any:
        if name not in self.space:
            return _constant(name)
        dim = self.space.by_name[name]
        symbol = self.symbols[name]
        if dim.is_integer:
            return symbol
        result: Any = _z3_number(dim.choices[-1])
        for i, choice in reversed(list(enumerate(dim.choices[:-1]))):
            result = z3.If(symbol == i, _z3_number(choice), result)
        return result

    def is_(self, name: str, choice: Any) -> Any:
        if name not in self.space:
            return z3.BoolVal(DEFAULTS.get(name) == choice)
        dim = self.space.by_name[name]
        if choice not in dim.choices:
            return z3.BoolVal(False)
        if dim.is_integer:
            return self.symbols[name] == choice
        return self.symbols[name] == dim.choices.index(choice)

    def div(self, a: Any, b: Any) -> Any:
        return a / b  # z3 integer division

    def where(self, condition: Any, then: Any, otherwise: Any) -> Any:
        return z3.If(condition, then, otherwise)

    def all(self, conditions: Sequence[Any]) -> Any:
        return z3.And(list(conditions))

    def any(self, conditions: Sequence[Any]) -> Any:
        return z3.Or(list(conditions))


def _z3_number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AvatarError(f"dimension value {value!r} is not a number and cannot enter arithmetic")
    return z3.IntVal(value) if isinstance(value, int) else z3.RealVal(value)


def _constant(name: str) -> Any:
    if name not in DEFAULTS:
        raise AvatarError(f"a constraint reads dimension {name!r}, which the space does not define")
    return DEFAULTS[name]


class ValueVars(Vars):
    """Concrete values (numpy arrays over a grid, or scalars for one candidate)."""

    def __init__(self, values: dict[str, Any], num_labels: int, allowed: Iterable[str] | None = None) -> None:
        self.values = values
        self.num_labels = num_labels
        self.allowed = set(allowed) if allowed is not None else None

    def _get(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        if self.allowed is not None and name not in DEFAULTS:
            raise AvatarError(f"a constraint reads dimension {name!r} without declaring it")
        return _constant(name)

    def value(self, name: str) -> Any:
        return self._get(name)

    def is_(self, name: str, choice: Any) -> Any:
        return np.asarray(self._get(name)) == choice

    def div(self, a: Any, b: Any) -> Any:
        return a // b

    def where(self, condition: Any, then: Any, otherwise: Any) -> Any:
        result = np.where(condition, then, otherwise)
        return result.item() if result.ndim == 0 else result

    def all(self, conditions: Sequence[Any]) -> Any:
        return np.logical_and.reduce([np.asarray(c) for c in conditions])

    def any(self, conditions: Sequence[Any]) -> Any:
        return np.logical_or.reduce([np.asarray(c) for c in conditions])


def candidate_vars(candidate: Candidate, num_labels: int) -> ValueVars:
    """Python-int values of one candidate (exact: no float or int64 overflow)."""
    return ValueVars(candidate.as_dict(), num_labels)


# ------------------------------------------------------------------------- constraints
