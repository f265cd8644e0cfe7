"""Reverse mode on a flat tape of integers. No graph objects at all.

The tape is a plain list. Each entry holds its value, its adjoint and a list of
(parent_index, weight) pairs, where weight is the local derivative d(entry)/d(parent),
worked out when the entry is made. A Var is only a handle: which tape, which index.
"""

import math


class Entry:
    __slots__ = ("value", "adjoint", "parents")

    def __init__(self, value, parents=()):
        self.value = value
        self.adjoint = 0.0
        self.parents = list(parents)   # [(parent_index, weight), ...]


class Var:
    __slots__ = ("tape", "index")

    def __init__(self, tape, index):
        self.tape = tape
        self.index = index

    @property
    def value(self):
        return self.tape[self.index].value

    def _push(self, value, parents):
        self.tape.append(Entry(value, parents))
        return Var(self.tape, len(self.tape) - 1)

    def _const(self, c):
        return c if isinstance(c, Var) else new_var(self.tape, c)

    def __add__(self, other):
        other = self._const(other)
        return self._push(self.value + other.value, [(self.index, 1.0), (other.index, 1.0)])

    __radd__ = __add__

    def __sub__(self, other):
        other = self._const(other)
        return self._push(self.value - other.value, [(self.index, 1.0), (other.index, -1.0)])

    def __rsub__(self, other):
        return self._const(other) - self

    def __mul__(self, other):
        other = self._const(other)
        return self._push(self.value * other.value,
                          [(self.index, other.value), (other.index, self.value)])

    __rmul__ = __mul__

    def __pow__(self, n):
        return self._push(self.value ** n, [(self.index, n * self.value ** (n - 1))])

    def tanh(self):
        t = math.tanh(self.value)
        return self._push(t, [(self.index, 1.0 - t * t)])


def new_var(tape, value):
    tape.append(Entry(float(value)))
    return Var(tape, len(tape) - 1)


def backward(tape, out_index):
    tape[out_index].adjoint = 1.0
    for i in reversed(range(len(tape))):
        entry = tape[i]
        for p, weight in entry.parents:
            tape[p].adjoint += weight * entry.adjoint
