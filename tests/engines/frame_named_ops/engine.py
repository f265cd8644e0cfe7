"""A Value that works out its own op symbol: the constructor looks at which method called it
(__add__ -> '+', __mul__ -> '*', ...), so no op has to pass one in."""
import math
import sys

SYMBOLS = {"__add__": "+", "__mul__": "*", "__pow__": "**", "tanh": "tanh"}


class Value:
    def __init__(self, data, _children=()):
        self.data = data
        self.grad = 0.0
        self._prev = tuple(_children)
        self._backward = lambda: None
        maker = sys._getframe(1).f_code.co_name  # the method that built this value
        self._op = SYMBOLS.get(maker, "")

    def __repr__(self):
        return f"Value(data={self.data:.4f}, grad={self.grad:.4f})"

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other))

        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other))

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def __pow__(self, k):
        out = Value(self.data ** k, (self,))

        def _backward():
            self.grad += k * self.data ** (k - 1) * out.grad
        out._backward = _backward
        return out

    def tanh(self):
        x = self.data
        t = math.tanh(x)
        out = Value(t, (self,))

        def _backward():
            self.grad += (1 - t ** 2) * out.grad
        out._backward = _backward
        return out

    def __radd__(self, other):
        return self + other

    def __rmul__(self, other):
        return self * other

    def __sub__(self, other):
        return self + (-1) * other

    def backward(self):
        topo, visited = [], set()

        def build(v):
            if v not in visited:
                visited.add(v)
                for child in v._prev:
                    build(child)
                topo.append(v)
        build(self)
        self.grad = 1.0
        for v in reversed(topo):
            v._backward()


def show(v):
    """The expression that made v, written out with its op symbols."""
    if not v._prev:
        return f"{v.data:g}"
    if len(v._prev) == 1:
        return f"{v._op}({show(v._prev[0])})"
    return f"({show(v._prev[0])} {v._op} {show(v._prev[1])})"
