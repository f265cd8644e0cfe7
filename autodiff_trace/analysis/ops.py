"""Ops as events spell them, read as rows of the rule table, and recomputed.

Engines name their ops in their own words (micrograd's ``"*"`` and ``"ReLU"``,
minitorch's ``"Mul"``, a functional ``power``) and may record a repeated operand once
(``b * b`` keeps the one-element set ``{b}``). These helpers map both onto
:mod:`autodiff_trace.engine.rules`, so a recorded graph can be evaluated again.
"""

from __future__ import annotations

import math
from typing import Mapping, Optional, Sequence, Tuple

from ..engine.rules import RULES, Rule

__all__ = ["UncheckableGraph", "resolve_op", "op_value", "Plan", "plan_of", "evaluate", "same_value"]

# Ops as other engines spell them: micrograd's "+", "*", "ReLU"; "-" is sub or neg by arity.
_BY_SYMBOL = {(rule.symbol, rule.arity): rule for rule in RULES.values()
              if rule.name not in ("const", "powc")}



class UncheckableGraph(ValueError):
    """The recorded graph cannot be evaluated again: an op without a rule, a node made
    before tracing began, or values that do not follow from their ops. ``node`` is the
    node at fault, when there is one."""

    def __init__(self, message: str, node: Optional[int] = None) -> None:
        super().__init__(message)
        self.node = node


# Other engines' names for ops of the table: minitorch's "Mul", "Add", functional "power".
_ALIASES = {"power": "pow", "**": "pow", "minus": "sub", "times": "mul", "plus": "add"}


def resolve_op(op: str, arity: int) -> Tuple[Rule, Optional[float]]:
    """The rule for an op as events spell it, and its constant (the 3 of ``"**3"``).

    >>> [(rule.name, c) for rule, c in (resolve_op("mul", 2), resolve_op("**0.5", 1), resolve_op("ReLU", 1))]
    [('mul', None), ('powc', 0.5), ('relu', None)]
    """
    rule = RULES.get(op) or RULES.get(op.lower())
    if rule is not None and rule.arity == arity and rule.name not in ("const", "powc"):
        return rule, None
    if op.startswith("**") and arity == 1:
        try:
            return RULES["powc"], float(op[2:])
        except ValueError:
            pass
    rule = _BY_SYMBOL.get((op, arity))
    if rule is None:
        raise UncheckableGraph(f"no derivative rule is known for the op {op!r} with {arity} operand(s)")
    return rule, None


def op_value(op: str, operands: Sequence[float]) -> float:
    """The value of ``op`` on ``operands``, by the rule table.

    >>> op_value("mul", (2.0, 3.0)), op_value("**3", (2.0,)), op_value("+", (1.0, 2.0))
    (6.0, 8.0, 3.0)
    """
    rule, constant = resolve_op(op, len(operands))
    second = operands[1] if rule.arity == 2 else constant
    return rule.value(operands[0], second)


def same_value(a: float, b: float) -> bool:
    """Two recomputations of one value: equal up to rounding."""
    return a == b or abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


# How to recompute a node: its rule, its operands (node ids, repeated for ``b * b``) and
# the rule's constant (the exponent of a constant power).
Plan = Tuple[Rule, Tuple[int, ...], Optional[float]]


def plan_of(info, values: Mapping[int, float]) -> Plan:
    """How to recompute the node ``info`` from its parents. A one-element parent set for a
    binary op is a repeated operand (micrograd's ``b * b`` keeps ``_prev == {b}``); a
    power with one parent and no exponent in its name takes the exponent its values imply.

    >>> from types import SimpleNamespace as N
    >>> rule, operands, c = plan_of(N(op="*", parents=(4,), value=9.0), {4: 3.0})
    >>> rule.name, operands, c
    ('mul', (4, 4), None)
    """
    parents = tuple(info.parents)
    try:
        rule, constant = resolve_op(info.op, len(parents))
        return rule, parents, constant
    except UncheckableGraph as unknown:
        if len(parents) != 1:
            raise
        binary = _binary(info.op)
        if binary is None:
            raise
        if binary.name == "pow":
            exponent = _exponent(values.get(parents[0]), info.value)
            if exponent is None:
                raise unknown from None
            return RULES["powc"], parents, exponent
        return binary, parents * 2, None


def _binary(op: str) -> Optional[Rule]:
    name = _ALIASES.get(op.lower(), op.lower())
    rule = RULES.get(name) if name else None
    if rule is None:
        rule = _BY_SYMBOL.get((op, 2))
    return rule if rule is not None and rule.arity == 2 else None


def _exponent(base: Optional[float], value: float) -> Optional[float]:
    """The constant c with base ** c == value, when one is clear (a whole or half number)."""
    if base is None or base <= 0 or base == 1 or value <= 0:
        return None
    c = math.log(value) / math.log(base)
    for nice in (round(c), round(c * 2) / 2):
        if abs(c - nice) < 1e-6:
            return float(nice)
    return None


def evaluate(plan: Plan, value_of) -> float:
    rule, operands, constant = plan
    a = value_of(operands[0])
    return rule.value(a, value_of(operands[1]) if rule.arity == 2 else constant)
