"""A Value as a plain dataclass: the generated __init__, __repr__ and __eq__ come for free.

Because the dataclass defines __eq__, Values are unhashable, so graph walks key on id().
"""
import math
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Value:
    value: float
    grad: float = 0.0
    deps: tuple = field(default=(), repr=False)
    backward_step: Callable = field(default=lambda: None, repr=False, compare=False)

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.value + other.value, deps=(self, other))

        def backward_step():
            self.grad += out.grad
            other.grad += out.grad
        out.backward_step = backward_step
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.value * other.value, deps=(self, other))

        def backward_step():
            self.grad += other.value * out.grad
            other.grad += self.value * out.grad
        out.backward_step = backward_step
        return out

    def __pow__(self, n):
        out = Value(self.value ** n, deps=(self,))

        def backward_step():
            self.grad += n * self.value ** (n - 1) * out.grad
        out.backward_step = backward_step
        return out

    def tanh(self):
        t = math.tanh(self.value)
        out = Value(t, deps=(self,))

        def backward_step():
            self.grad += (1 - t ** 2) * out.grad
        out.backward_step = backward_step
        return out

    def __radd__(self, other):  # other + self
        return self + other

    def __rmul__(self, other):  # other * self
        return self * other

    def __sub__(self, other):  # self - other
        return self + other * -1.0

    def backward(self):
        order, visited = [], set()
        stack = [(self, False)]
        while stack:
            node, deps_done = stack.pop()
            if deps_done:
                order.append(node)
            elif id(node) not in visited:
                visited.add(id(node))
                stack.append((node, True))
                stack.extend((d, False) for d in node.deps)
        self.grad = 1.0
        for node in reversed(order):
            node.backward_step()
