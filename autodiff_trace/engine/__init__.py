"""The scalar engine: ``Value``, its derivative table, and the notebook's functional API."""

from .functional import (
    add, backward, cos, div, exp, log, mul, neg, power, relu, sigmoid, sin, sqrt, sub, tan, tanh,
)
from .rules import DomainError
from .value import Value, topological_order, zero_grad

__all__ = [
    "Value", "DomainError", "topological_order", "zero_grad", "backward",
    "add", "sub", "mul", "div", "power", "neg",
    "sin", "cos", "tan", "log", "exp", "sqrt", "relu", "sigmoid", "tanh",
]
