"""The derivative table: for every op, its value rule and the local derivative per parent.

Read it like the table in a textbook. ``value(a, b)`` computes the op's result;
``local(a, b, out)`` returns d out / d parent, given the parents' values and the
result. Binary ops return one derivative per parent as a pair; unary ops take their
constant (the exponent of ``x ** 3``) or ``None`` as ``b`` and return a single number.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

__all__ = ["Rule", "RULES", "DomainError"]


class DomainError(ValueError):
    """An op was asked for a value outside its domain, e.g. ``log(-1)`` or ``1 / 0``."""


class Rule(NamedTuple):
    name: str  # "mul"; also the op name in events and pictures
    symbol: str  # "*"
    arity: int  # how many parents are nodes: 0 (a constant), 1 or 2
    value: Callable
    local: Callable


def _sigmoid(a: float) -> float:
    # Two forms so that exp never overflows: exp(-a) for a >= 0, exp(a) below.
    if a >= 0:
        return 1.0 / (1.0 + math.exp(-a))
    e = math.exp(a)
    return e / (1.0 + e)


def _power(a: float, c: float) -> float:
    if a < 0 and c != int(c):
        raise DomainError("a negative base to a fractional power has no real value")
    return a ** c


def _power_of_node(a: float, b: float) -> float:
    if a < 0:
        raise DomainError("a negative base needs a constant exponent; d/db a**b = a**b ln a has no real value")
    return a ** b


def _power_local(a: float, c: float) -> float:
    # d/da a**c = c a**(c-1); at a == 0 with c < 1 that is infinite (c == 0: the constant 1)
    if a == 0 and c < 1:
        return 0.0 if c == 0 else math.inf
    return c * a ** (c - 1)


def _power_of_node_local(a: float, b: float, out: float) -> tuple:
    # d/da a**b = b a**(b-1);  d/db a**b = a**b ln a  (a > 0; at a == 0 the limit is 0)
    if a == 0:
        return (0.0 if b > 1 else (1.0 if b == 1 else math.inf)), 0.0
    return b * a ** (b - 1), out * math.log(a)


# name, symbol, arity, value rule, local derivative(s)
_TABLE = [
    Rule("const", "const", 0, None, None),
    Rule("add", "+", 2, lambda a, b: a + b, lambda a, b, out: (1.0, 1.0)),
    Rule("sub", "-", 2, lambda a, b: a - b, lambda a, b, out: (1.0, -1.0)),
    Rule("mul", "*", 2, lambda a, b: a * b, lambda a, b, out: (b, a)),
    Rule("div", "/", 2, lambda a, b: a / b, lambda a, b, out: (1.0 / b, -a / (b * b))),
    Rule("pow", "**", 2, _power_of_node, lambda a, b, out: _power_of_node_local(a, b, out)),
    Rule("powc", "**", 1, _power, lambda a, c, out: _power_local(a, c)),
    Rule("neg", "-", 1, lambda a, _: -a, lambda a, _, out: -1.0),
    Rule("sin", "sin", 1, lambda a, _: math.sin(a), lambda a, _, out: math.cos(a)),
    Rule("cos", "cos", 1, lambda a, _: math.cos(a), lambda a, _, out: -math.sin(a)),
    Rule("tan", "tan", 1, lambda a, _: math.tan(a), lambda a, _, out: 1.0 + out * out),  # sec^2
    Rule("log", "log", 1, lambda a, _: math.log(a), lambda a, _, out: 1.0 / a),
    Rule("exp", "exp", 1, lambda a, _: math.exp(a), lambda a, _, out: out),
    Rule("sqrt", "sqrt", 1, lambda a, _: math.sqrt(a), lambda a, _, out: 0.5 / out if out else math.inf),
    Rule("relu", "relu", 1, lambda a, _: a if a > 0 else 0.0, lambda a, _, out: 1.0 if a > 0 else 0.0),
    Rule("sigmoid", "σ", 1, lambda a, _: _sigmoid(a), lambda a, _, out: out * (1.0 - out)),
    Rule("tanh", "tanh", 1, lambda a, _: math.tanh(a), lambda a, _, out: 1.0 - out * out),
]

RULES = {rule.name: rule for rule in _TABLE}

# Each row by name: the engine's op code is the row itself (``node._op is MUL``).
CONST, ADD, SUB, MUL, DIV, POW, POWC, NEG = (RULES[name] for name in (
    "const", "add", "sub", "mul", "div", "pow", "powc", "neg"))
SIN, COS, TAN, LOG, EXP, SQRT, RELU, SIGMOID, TANH = (RULES[name] for name in (
    "sin", "cos", "tan", "log", "exp", "sqrt", "relu", "sigmoid", "tanh"))

# Why an op's value is undefined, for the error message.
DOMAINS = {
    "div": "the divisor must not be zero",
    "log": "log needs a positive operand",
    "sqrt": "sqrt needs a non-negative operand",
    "powc": "0 cannot be raised to a negative power, nor a negative base to a fractional one",
    "pow": "the base must be positive when the exponent is a node",
    "exp": "the result is too large for a float",
}
