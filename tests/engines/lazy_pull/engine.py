# Reverse-mode AD, "pull" style (after the rufflewind tutorial).
#
# Every Var remembers who used it: a list of (weight, child) pairs where
# weight = d child / d self. The gradient of the output w.r.t. a Var is then
#   sum over children of weight * (gradient of the output w.r.t. child)
# which we compute lazily when someone asks, and cache in grad_value.
# The output itself is seeded by hand: out.grad_value = 1.0
import math


class Var:
    def __init__(self, value):
        self.value = value
        self.children = []  # (weight, child) for everyone that consumed me
        self.grad_value = None  # cached d(output)/d(self); None = not computed yet

    def grad(self):
        if self.grad_value is None:
            total = 0.0
            for weight, child in self.children:
                total += weight * child.grad()
            self.grad_value = total
        return self.grad_value

    def zero_grad(self):
        """Get ready for a new graph: forget the cached gradient and old consumers."""
        self.grad_value = None  # forget the memo
        self.children = []  # and the consumers from the last graph

    def __add__(self, other):
        other = other if isinstance(other, Var) else Var(other)
        z = Var(self.value + other.value)
        self.children.append((1.0, z))
        other.children.append((1.0, z))
        return z

    __radd__ = __add__

    def __sub__(self, other):
        other = other if isinstance(other, Var) else Var(other)
        z = Var(self.value - other.value)
        self.children.append((1.0, z))
        other.children.append((-1.0, z))
        return z

    def __mul__(self, other):
        other = other if isinstance(other, Var) else Var(other)
        z = Var(self.value * other.value)
        self.children.append((other.value, z))
        other.children.append((self.value, z))
        return z

    __rmul__ = __mul__

    def __pow__(self, n):
        z = Var(self.value ** n)
        self.children.append((n * self.value ** (n - 1), z))
        return z

    def __repr__(self):
        return f"Var({self.value})"


def tanh(x):
    t = math.tanh(x.value)
    z = Var(t)
    x.children.append((1 - t ** 2, z))
    return z
