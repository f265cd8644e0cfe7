"""Computation graph nodes. Every operation is its own class.

A node knows its value (computed when the node is built), its gradient
(filled in by backprop) and its parents. An op's backward(grad) gets the
gradient of the loss w.r.t. the op's output and returns one gradient per
parent, in the same order as parents().
"""
import math


class Node:
    def __init__(self, value):
        self.value = value
        self.grad = 0.0

    def parents(self):
        return ()

    def backward(self, grad):
        return ()

    def zero_grad(self):
        self.grad = 0.0

    # operator sugar so formulas read naturally
    def __add__(self, other):
        return Add(self, wrap(other))

    def __radd__(self, other):
        return Add(wrap(other), self)

    def __mul__(self, other):
        return Mul(self, wrap(other))

    def __rmul__(self, other):
        return Mul(wrap(other), self)

    def __sub__(self, other):
        return Add(self, Mul(Const(-1.0), wrap(other)))

    def __rsub__(self, other):
        return wrap(other) - self

    def __pow__(self, n):
        return Pow(self, n)

    def __repr__(self):
        return f"{type(self).__name__}({self.value:.4f})"


class Var(Node):
    """A leaf we want the gradient of (a weight, a bias)."""


class Const(Node):
    """A leaf we never update (inputs, targets, literal numbers)."""


def wrap(x):
    return x if isinstance(x, Node) else Const(float(x))


class Add(Node):
    def __init__(self, a, b):
        super().__init__(a.value + b.value)
        self.a, self.b = a, b

    def parents(self):
        return (self.a, self.b)

    def backward(self, grad):
        return (grad, grad)


class Mul(Node):
    def __init__(self, a, b):
        super().__init__(a.value * b.value)
        self.a, self.b = a, b

    def parents(self):
        return (self.a, self.b)

    def backward(self, grad):
        # d(ab)/da = b, d(ab)/db = a
        return (grad * self.b.value, grad * self.a.value)


class Pow(Node):
    """x ** n for a constant number n."""

    def __init__(self, base, n):
        super().__init__(base.value ** n)
        self.base, self.n = base, n

    def parents(self):
        return (self.base,)

    def backward(self, grad):
        return (grad * self.n * self.base.value ** (self.n - 1),)


class Tanh(Node):
    def __init__(self, arg):
        super().__init__(math.tanh(arg.value))
        self.arg = arg

    def parents(self):
        return (self.arg,)

    def backward(self, grad):
        # tanh' = 1 - tanh^2, and self.value already is tanh(arg)
        return (grad * (1 - self.value ** 2),)


def tanh(x):
    return Tanh(wrap(x))
