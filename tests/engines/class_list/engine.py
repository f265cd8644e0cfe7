"""Reverse-mode differentiation with one class-level list of every variable.

Each Variable remembers, in `adjoints`, which variables were computed from it and the
local derivative of each of them with respect to it. Because variables are appended
to Variable.all_vars in creation order, walking that list backwards visits every
consumer before the variables it was made from.
"""

import math


class Variable:
    all_vars = []

    def __init__(self, value):
        self.value = float(value)
        self.derivative = 0.0
        self.adjoints = []          # [(consumer, d consumer / d self), ...]
        Variable.all_vars.append(self)

    def __repr__(self):
        return f"Variable({self.value:.4f}, d={self.derivative:.4f})"

    @staticmethod
    def wrap(x):
        return x if isinstance(x, Variable) else Variable(x)

    def __add__(self, other):
        other = Variable.wrap(other)
        result = Variable(self.value + other.value)
        self.adjoints.append((result, 1.0))
        other.adjoints.append((result, 1.0))
        return result

    def __radd__(self, other):
        return self + other

    def __sub__(self, other):
        other = Variable.wrap(other)
        result = Variable(self.value - other.value)
        self.adjoints.append((result, 1.0))
        other.adjoints.append((result, -1.0))
        return result

    def __rsub__(self, other):
        return Variable.wrap(other) - self

    def __mul__(self, other):
        other = Variable.wrap(other)
        result = Variable(self.value * other.value)
        self.adjoints.append((result, other.value))
        other.adjoints.append((result, self.value))
        return result

    def __rmul__(self, other):
        return self * other

    def __pow__(self, n):
        result = Variable(self.value ** n)
        self.adjoints.append((result, n * self.value ** (n - 1)))
        return result

    def tanh(self):
        result = Variable(math.tanh(self.value))
        self.adjoints.append((result, 1 - result.value ** 2))
        return result


def diff(output):
    """Fill in d(output)/d(v) as v.derivative for every variable on the list."""
    for var in Variable.all_vars:
        var.derivative = 0.0
    output.derivative = 1.0
    for v in reversed(Variable.all_vars):
        if v is output:
            continue
        for consumer, local in v.adjoints:
            v.derivative += local * consumer.derivative
