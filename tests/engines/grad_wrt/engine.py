"""Each node stores, the moment it is created, its local derivative with respect to
each of its parents: node.grad_wrt = {parent: d node / d parent}.
Backward is then one loop that never needs to know which op made a node."""

import math


class Node:
    def __init__(self, value, grad_wrt=None):
        self.value = value
        self.grad = 0.0
        self.grad_wrt = grad_wrt or {}

    def __repr__(self):
        return f"Node({self.value:.4f}, grad={self.grad:.4f})"


def _node(x):
    return x if isinstance(x, Node) else Node(float(x))


def _local(*pairs):
    # x * x has the same parent twice: its two local derivatives must add up
    grad_wrt = {}
    for parent, d in pairs:
        grad_wrt[parent] = grad_wrt.get(parent, 0.0) + d
    return grad_wrt


def add(a, b):
    a, b = _node(a), _node(b)
    return Node(a.value + b.value, _local((a, 1.0), (b, 1.0)))


def sub(a, b):
    a, b = _node(a), _node(b)
    return Node(a.value - b.value, _local((a, 1.0), (b, -1.0)))


def mul(a, b):
    a, b = _node(a), _node(b)
    return Node(a.value * b.value, _local((a, b.value), (b, a.value)))


def power(a, n):
    a = _node(a)
    return Node(a.value ** n, _local((a, n * a.value ** (n - 1))))


def tanh(a):
    a = _node(a)
    t = math.tanh(a.value)
    return Node(t, _local((a, 1 - t ** 2)))


Node.__add__ = add
Node.__radd__ = lambda self, other: add(other, self)
Node.__sub__ = sub
Node.__rsub__ = lambda self, other: sub(other, self)
Node.__mul__ = mul
Node.__rmul__ = lambda self, other: mul(other, self)
Node.__pow__ = power


def backward(root):
    order, seen = [], set()

    def visit(node):
        if node in seen:
            return
        seen.add(node)
        for parent in node.grad_wrt:
            visit(parent)
        order.append(node)

    visit(root)
    root.grad = 1.0
    for node in reversed(order):
        for parent, local in node.grad_wrt.items():
            parent.grad += node.grad * local
