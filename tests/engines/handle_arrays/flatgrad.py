"""Reverse mode over flat arrays: the Graph owns every number, nodes are small handles.

values[i], grads[i]  the value of node i and d(output)/d(node i)
inputs[i]            indices of the nodes node i was computed from
partials[i]          d(node i)/d(input), one per input, computed in the forward pass
Nodes are appended in the order they are computed, so index order is a topological order.
"""
import math


class Graph:
    def __init__(self):
        self.values, self.grads, self.inputs, self.partials = [], [], [], []

    def node(self, value, inputs=(), partials=()):
        self.values.append(value)
        self.grads.append(0.0)
        self.inputs.append(tuple(inputs))
        self.partials.append(tuple(partials))
        return Handle(self, len(self.values) - 1)

    def leaf(self, value):
        return self.node(value)

    def truncate(self, n):
        """Forget every node after the first n (the parameters), ready for the next forward pass."""
        for column in (self.values, self.grads, self.inputs, self.partials):
            del column[n:]

    def backward(self, out):
        self.grads[out.index] = 1.0
        for i in range(out.index, -1, -1):
            for j, d in zip(self.inputs[i], self.partials[i]):
                self.grads[j] += d * self.grads[i]


class Handle:
    __slots__ = ("graph", "index")

    def __init__(self, graph, index):
        self.graph = graph
        self.index = index

    @property
    def value(self):
        return self.graph.values[self.index]

    @value.setter
    def value(self, v):
        self.graph.values[self.index] = v

    @property
    def grad(self):
        return self.graph.grads[self.index]

    @grad.setter
    def grad(self, g):
        self.graph.grads[self.index] = g

    def __repr__(self):
        return f"Handle(#{self.index}, value={self.value:.4f}, grad={self.grad:.4f})"

    def _lift(self, x):
        return x if isinstance(x, Handle) else self.graph.leaf(float(x))

    def __add__(self, other):
        other = self._lift(other)
        return self.graph.node(self.value + other.value, (self.index, other.index), (1.0, 1.0))

    def __sub__(self, other):
        other = self._lift(other)
        return self.graph.node(self.value - other.value, (self.index, other.index), (1.0, -1.0))

    def __mul__(self, other):
        other = self._lift(other)
        return self.graph.node(self.value * other.value, (self.index, other.index), (other.value, self.value))

    def __pow__(self, n):
        return self.graph.node(self.value ** n, (self.index,), (n * self.value ** (n - 1),))

    def tanh(self):
        t = math.tanh(self.value)
        return self.graph.node(t, (self.index,), (1 - t * t,))

    __radd__ = __add__
    __rmul__ = __mul__
