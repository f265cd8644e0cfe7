"""Scalar autodiff in the style of tf.GradientTape.

    with Tape() as tape:
        loss = ...
    dw, db = tape.gradient(loss, [w, b])

Ops run on plain Variables; whichever Tape is active in the current context writes down
(output, inputs, local partials). Nothing about gradients is stored on the Variables.
"""

import contextvars
import math
from collections import defaultdict

_current_tape = contextvars.ContextVar("current_tape", default=None)


class Variable:
    def __init__(self, value):
        self.value = float(value)

    def __repr__(self):
        return f"<Variable {self.value:.4f}>"

    def __add__(self, other):
        other = _var(other)
        return _record(self.value + other.value, (self, other), (1.0, 1.0))

    def __radd__(self, other):
        return _var(other) + self

    def __sub__(self, other):
        other = _var(other)
        return _record(self.value - other.value, (self, other), (1.0, -1.0))

    def __rsub__(self, other):
        return _var(other) - self

    def __mul__(self, other):
        other = _var(other)
        return _record(self.value * other.value, (self, other), (other.value, self.value))

    def __rmul__(self, other):
        return _var(other) * self

    def __pow__(self, n):
        return _record(self.value ** n, (self,), (n * self.value ** (n - 1),))


def _var(x):
    return x if isinstance(x, Variable) else Variable(x)


def tanh(x):
    x = _var(x)
    t = math.tanh(x.value)
    return _record(t, (x,), (1.0 - t * t,))


def _record(value, inputs, partials):
    out = Variable(value)
    tape = _current_tape.get()
    if tape is not None:
        tape.ops.append((out, inputs, partials))
    return out


class Tape:
    def __init__(self):
        self.ops = []
        self._token = None

    def __enter__(self):
        self._token = _current_tape.set(self)
        return self

    def __exit__(self, *exc):
        _current_tape.reset(self._token)
        return False

    def gradient(self, target, sources):
        adjoint = defaultdict(float)
        adjoint[target] = 1.0
        for out, inputs, partials in reversed(self.ops):
            g = adjoint[out]
            for inp, d in zip(inputs, partials):
                adjoint[inp] += d * g
        return [adjoint[s] for s in sources]
