"""The notebook's functional style beside the operators: ``add(a, b)``, ``backward(out)``."""

from __future__ import annotations

from .value import Value, _node, zero_grad

__all__ = [
    "add", "sub", "mul", "div", "power", "neg",
    "sin", "cos", "tan", "log", "exp", "sqrt", "relu", "sigmoid", "tanh",
    "backward", "zero_grad",
]


def add(a, b) -> Value: return _node(a, "+") + b
def sub(a, b) -> Value: return _node(a, "-") - b
def mul(a, b) -> Value: return _node(a, "*") * b
def div(a, b) -> Value: return _node(a, "/") / b
def power(a, b) -> Value: return _node(a, "**") ** b
def neg(a) -> Value: return -_node(a, "-")
def sin(a) -> Value: return _node(a, "sin").sin()
def cos(a) -> Value: return _node(a, "cos").cos()
def tan(a) -> Value: return _node(a, "tan").tan()
def log(a) -> Value: return _node(a, "log").log()
def exp(a) -> Value: return _node(a, "exp").exp()
def sqrt(a) -> Value: return _node(a, "sqrt").sqrt()
def relu(a) -> Value: return _node(a, "relu").relu()
def sigmoid(a) -> Value: return _node(a, "sigmoid").sigmoid()
def tanh(a) -> Value: return _node(a, "tanh").tanh()


def backward(out: Value, seed: float = 1.0) -> None:
    """``out.backward(seed)``: fill ``grad`` on every node ``out`` depends on."""
    out.backward(seed)
