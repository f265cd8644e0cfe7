"""Reverse-mode autodiff where backward is a queue, not a recursion.

Every Var knows its sources (the Vars it was computed from). propagate() counts, for each
node, how many consumers still have to hand it their gradient (Kahn's algorithm), and a node
is processed only when that count reaches zero, so its gradient is complete by then.
"""
import math
from collections import defaultdict, deque


class Var:
    def __init__(self, value, sources=(), name=None):
        self.value = value
        self.gradient = 0.0
        self.sources = tuple(sources)
        self.name = name
        self._back = None  # _back(g): add g * d(self)/d(source) into each source's gradient

    def __repr__(self):
        return f"Var({self.name or ''} value={self.value:.5f} gradient={self.gradient:.5f})"

    # ---- operations ----------------------------------------------------------------
    def __add__(self, other):
        other = other if isinstance(other, Var) else Var(other)
        out = Var(self.value + other.value, (self, other))

        def _back(g):
            self.gradient += g
            other.gradient += g
        out._back = _back
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Var) else Var(other)
        out = Var(self.value * other.value, (self, other))

        def _back(g):
            self.gradient += g * other.value
            other.gradient += g * self.value
        out._back = _back
        return out

    def __pow__(self, n):
        out = Var(self.value ** n, (self,))

        def _back(g):
            self.gradient += g * n * self.value ** (n - 1)
        out._back = _back
        return out

    def tanh(self):
        y = math.tanh(self.value)
        out = Var(y, (self,))

        def _back(g):
            self.gradient += g * (1.0 - y * y)
        out._back = _back
        return out

    def __radd__(self, other):
        return self + other

    def __rmul__(self, other):
        return self * other

    def __neg__(self):
        return self * -1.0

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return (-self) + other

    # ---- the reverse sweep ---------------------------------------------------------
    def propagate(self):
        # pass 1: breadth-first over the graph, counting each node's consumers
        waiting = defaultdict(int)
        seen = {self}
        todo = deque([self])
        while todo:
            node = todo.popleft()
            for src in node.sources:
                waiting[src] += 1
                if src not in seen:
                    seen.add(src)
                    todo.append(src)

        # pass 2: a node is ready once every consumer has handed it its gradient
        self.gradient = 1.0
        ready = deque([self])
        while ready:
            node = ready.popleft()
            if node._back is not None:
                node._back(node.gradient)
            for src in node.sources:
                waiting[src] -= 1
                if waiting[src] == 0:  # every consumer has been processed
                    ready.append(src)
