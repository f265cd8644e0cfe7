"""A Wengert list, the way the textbooks draw it.

Every operation writes one line to the tape: (op, input_ids, output_id). The variables
only carry a value and an id; the derivative rules live in one table, DERIVATIVES,
and grad() walks the tape from the bottom up, pushing adjoints to the inputs.
"""

import math
from collections import defaultdict


class Tape:
    def __init__(self):
        self.entries = []                  # the Wengert list itself
        self.adjoint = defaultdict(float)  # variable id -> d(output)/d(variable)

    def record(self, op, inputs, output):
        self.entries.append((op, tuple(v.id for v in inputs), output.id))

    def clear(self):
        self.entries = []


TAPE = Tape()
VARIABLES = {}   # id -> Var, so a tape line can find its numbers again
_next_id = 0


class Var:
    def __init__(self, value):
        global _next_id
        self.value = float(value)
        self.id = _next_id
        _next_id += 1
        VARIABLES[self.id] = self

    def __repr__(self):
        return f"v{self.id}={self.value:.4f}"

    def __add__(self, other):
        return apply("add", self, lift(other))

    __radd__ = __add__

    def __sub__(self, other):
        return apply("sub", self, lift(other))

    def __rsub__(self, other):
        return apply("sub", lift(other), self)

    def __mul__(self, other):
        return apply("mul", self, lift(other))

    __rmul__ = __mul__

    def __pow__(self, n):
        return apply("pow", self, lift(n))


def lift(x):
    return x if isinstance(x, Var) else Var(x)


FORWARD = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "pow": lambda a, n: a ** n,
    "tanh": lambda a: math.tanh(a),
}

# op -> function(input values..., output value) -> one partial derivative per input
DERIVATIVES = {
    "add": lambda a, b, out: (1.0, 1.0),
    "sub": lambda a, b, out: (1.0, -1.0),
    "mul": lambda a, b, out: (b, a),
    "pow": lambda a, n, out: (n * a ** (n - 1), 0.0),  # the exponent is a constant
    "tanh": lambda x, t: (1 - t ** 2,),
}


def apply(op, *inputs):
    out = Var(FORWARD[op](*(v.value for v in inputs)))
    TAPE.record(op, inputs, out)
    return out


def tanh(x):
    return apply("tanh", lift(x))


def grad(tape, output):
    """Reverse sweep over the Wengert list; returns the tape's adjoint table."""
    adj = tape.adjoint
    adj[output.id] = 1.0
    for op, input_ids, output_id in reversed(tape.entries):
        values = [VARIABLES[i].value for i in input_ids]
        partials = DERIVATIVES[op](*values, VARIABLES[output_id].value)
        for i, d in zip(input_ids, partials):
            adj[i] += d * adj[output_id]
    return adj
