"""Autodiff by summing over paths.

Each Node stores, next to its value, the pairs (parent, local_gradient) where
local_gradient = d node / d parent, worked out when the node is created.
The gradient of the root with respect to any node is the sum, over every path
from the root down to that node, of the product of the local gradients along it.
"""
import math


class Node:
    def __init__(self, value, parents=()):
        self.value = value
        self.parents = parents  # tuple of (parent, local_gradient)
        self.grad = 0.0  # filled in by the training loop from gradients()

    def __repr__(self):
        return f"Node({self.value:.4f})"

    def __add__(self, other):
        other = as_node(other)
        return Node(self.value + other.value, ((self, 1.0), (other, 1.0)))

    def __radd__(self, other):
        return as_node(other) + self

    def __sub__(self, other):
        other = as_node(other)
        return Node(self.value - other.value, ((self, 1.0), (other, -1.0)))

    def __rsub__(self, other):
        return as_node(other) - self

    def __mul__(self, other):
        other = as_node(other)
        return Node(self.value * other.value, ((self, other.value), (other, self.value)))

    def __rmul__(self, other):
        return as_node(other) * self

    def __neg__(self):
        return Node(-self.value, ((self, -1.0),))

    def __pow__(self, n):
        return Node(self.value ** n, ((self, n * self.value ** (n - 1)),))


def as_node(x):
    return x if isinstance(x, Node) else Node(x)


def tanh(a):
    t = math.tanh(a.value)
    return Node(t, ((a, 1 - t * t),))


def gradients(root):
    """{node: d root / d node} for every node below root."""
    return _walk(root, 1.0, {})


def _walk(node, path_value, grads={}):
    for parent, local_gradient in node.parents:
        through = path_value * local_gradient  # value of the path root -> parent
        grads[parent] = grads.get(parent, 0.0) + through
        _walk(parent, through, grads)
    return grads
