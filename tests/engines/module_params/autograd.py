import math


class Node:
    """A scalar in the computation graph.

    Attributes:
        data: the value computed in the forward pass.
        grad: d(loss)/d(this node), accumulated by backward().
        _from: the nodes this one was computed from.
        _chain: applies the chain rule from this node into the nodes in _from.
    """

    def __init__(self, data, _from=()):
        self.data = data
        self.grad = 0
        self._from = _from
        self._chain = lambda: None

    def __repr__(self):
        return f"{type(self).__name__}(data={self.data:.4f}, grad={self.grad:.4f})"

    def __add__(self, other):
        other = other if isinstance(other, Node) else Node(other)
        out = Node(self.data + other.data, (self, other))

        def _chain():
            self.grad += out.grad
            other.grad += out.grad
        out._chain = _chain
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Node) else Node(other)
        out = Node(self.data * other.data, (self, other))

        def _chain():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._chain = _chain
        return out

    def __pow__(self, exponent):
        out = Node(self.data ** exponent, (self,))

        def _chain():
            self.grad += exponent * self.data ** (exponent - 1) * out.grad
        out._chain = _chain
        return out

    def tanh(self):
        x = self.data
        y = math.tanh(x)
        out = Node(y, (self,))

        def _chain():
            self.grad += (1 - y ** 2) * out.grad
        out._chain = _chain
        return out

    def __neg__(self):
        return self * -1

    def __radd__(self, other):
        return self + other

    def __sub__(self, other):
        return self + (-other)

    def __rmul__(self, other):
        return self * other

    def backward(self):
        self.grad = 1
        for v in reversed(topo_sort(self)):
            v._chain()


def topo_sort(v, visited=None, order=None):
    """Every node v depends on, inputs before the nodes made from them, v last."""
    if order is None:
        visited, order = set(), []
    if v not in visited:
        visited.add(v)
        for child in v._from:
            topo_sort(child, visited, order)
        order.append(v)
    return order


class Parameter(Node):
    """A leaf the optimizer updates; the name is only for printing."""

    def __init__(self, data, name):
        super().__init__(data)
        self.name = name
