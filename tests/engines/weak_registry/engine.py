"""Tensor0: a scalar node whose derivative rules are methods picked by op name.

Every node is also entered in a weak registry, so a training loop can check that
old graphs are freed (no node should outlive the step that made it).
"""
import itertools
import math
import weakref

LIVE = weakref.WeakValueDictionary()  # serial number -> node, for as long as it is alive
_serial = itertools.count()


class Tensor0:
    __slots__ = ("data", "grad", "_prev", "_op", "__weakref__")

    def __init__(self, data, _prev=(), _op=""):
        self.data = data
        self.grad = 0.0
        self._prev = _prev
        self._op = _op
        LIVE[next(_serial)] = self

    def __repr__(self):
        return f"Tensor0({self.data:.4f}, grad={self.grad:.4f}, op={self._op!r})"

    @staticmethod
    def lift(x):
        return x if isinstance(x, Tensor0) else Tensor0(x)

    def __add__(self, other):
        return Tensor0(self.data + Tensor0.lift(other).data, (self, Tensor0.lift(other)), "add")

    def __mul__(self, other):
        other = Tensor0.lift(other)
        return Tensor0(self.data * other.data, (self, other), "mul")

    def __pow__(self, k):
        return Tensor0(self.data ** k, (self, Tensor0(k)), "pow")

    def tanh(self):
        return Tensor0(math.tanh(self.data), (self,), "tanh")

    __radd__ = __add__
    __rmul__ = __mul__

    def __sub__(self, other):
        return self + (-1.0) * Tensor0.lift(other)

    # ---- one method per op: push self.grad into the inputs -------------------------
    def _back_add(self):
        a, b = self._prev
        a.grad += self.grad
        b.grad += self.grad

    def _back_mul(self):
        a, b = self._prev
        a.grad += b.data * self.grad
        b.grad += a.data * self.grad

    def _back_pow(self):
        a, k = self._prev
        a.grad += k.data * a.data ** (k.data - 1) * self.grad

    def _back_tanh(self):
        (a,) = self._prev
        a.grad += (1 - self.data ** 2) * self.grad

    def backward(self):
        topo, seen = [], set()
        stack = [self]
        while stack:  # iterative post-order: a node goes in after all its inputs
            node = stack[-1]
            pending = [p for p in node._prev if p not in seen]
            if pending:
                stack.extend(pending)
            else:
                stack.pop()
                if node not in seen:
                    seen.add(node)
                    topo.append(node)
        self.grad = 1.0
        for node in reversed(topo):
            if node._op:
                getattr(node, "_back_" + node._op)()
