"""Scalar autograd that behaves like PyTorch's on the outside.

Only leaves that were created with requires_grad=True get a .grad, and it stays None until
the first backward() writes it. Gradients of intermediate results live in a dict for the
duration of one backward() and are thrown away afterwards. Leaf grads accumulate across
backward() calls until zero_grad() sets them back to None.
"""
import math


class Variable:
    def __init__(self, data, requires_grad=False, _parents=(), _vjp=None):
        self.data = data
        self.requires_grad = requires_grad or any(p.requires_grad for p in _parents)
        self.grad = None
        self._parents = _parents
        self._vjp = _vjp  # grad of the output -> tuple of grads of the parents

    @property
    def is_leaf(self):
        return not self._parents

    def __repr__(self):
        return f"Variable({self.data:.4f}, requires_grad={self.requires_grad})"

    @staticmethod
    def _as_variable(x):
        return x if isinstance(x, Variable) else Variable(x)

    def __add__(self, other):
        other = self._as_variable(other)
        return Variable(self.data + other.data, _parents=(self, other),
                        _vjp=lambda g: (g, g))

    def __sub__(self, other):
        other = self._as_variable(other)
        return Variable(self.data - other.data, _parents=(self, other),
                        _vjp=lambda g: (g, -g))

    def __mul__(self, other):
        other = self._as_variable(other)
        return Variable(self.data * other.data, _parents=(self, other),
                        _vjp=lambda g: (g * other.data, g * self.data))

    def __pow__(self, p):
        return Variable(self.data ** p, _parents=(self,),
                        _vjp=lambda g: (g * p * self.data ** (p - 1),))

    def tanh(self):
        x = self.data
        t = math.tanh(x)
        return Variable(t, _parents=(self,), _vjp=lambda g: (g * (1 - t * t),))

    __radd__ = __add__
    __rmul__ = __mul__

    def __rsub__(self, other):
        return self._as_variable(other) - self

    def backward(self):
        order, seen = [], set()

        def visit(v):
            if v in seen:
                return
            seen.add(v)
            for parent in v._parents:
                visit(parent)
            order.append(v)

        visit(self)
        grads = {self: 1.0}  # d(self)/d(v) for the variables reached so far
        for v in reversed(order):
            g = grads.pop(v, None)
            if g is None:
                continue
            if v.is_leaf:
                if v.requires_grad:
                    v.grad = g if v.grad is None else v.grad + g
                continue
            for parent, parent_grad in zip(v._parents, v._vjp(g)):
                if parent.requires_grad:
                    grads[parent] = grads.get(parent, 0.0) + parent_grad


def zero_grad(params):
    for p in params:
        p.grad = None
