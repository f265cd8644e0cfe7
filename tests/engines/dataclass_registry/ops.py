import math

from nodes import Node, rule


def lift(x):
    return x if isinstance(x, Node) else Node(float(x))


def add(a, b):
    a, b = lift(a), lift(b)
    return Node(a.value + b.value, op="add", args=(a, b))


@rule("add")
def _(node):
    a, b = node.args
    a.grad += node.grad
    b.grad += node.grad


def mul(a, b):
    a, b = lift(a), lift(b)
    return Node(a.value * b.value, op="mul", args=(a, b))


@rule("mul")
def _(node):
    a, b = node.args
    a.grad += b.value * node.grad
    b.grad += a.value * node.grad


def power(a, k):
    a = lift(a)
    return Node(a.value ** k, op="pow", args=(a,), extra={"k": k})


@rule("pow")
def _(node):
    (a,), k = node.args, node.extra["k"]
    a.grad += k * a.value ** (k - 1) * node.grad


def tanh(a):
    a = lift(a)
    return Node(math.tanh(a.value), op="tanh", args=(a,))


@rule("tanh")
def _(node):
    (a,) = node.args
    a.grad += (1 - node.value ** 2) * node.grad


# operator sugar
Node.__add__ = add
Node.__radd__ = lambda self, other: add(other, self)
Node.__mul__ = mul
Node.__rmul__ = lambda self, other: mul(other, self)
Node.__sub__ = lambda self, other: add(self, mul(other, -1.0))
Node.__pow__ = power
