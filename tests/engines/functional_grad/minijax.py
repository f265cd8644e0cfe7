"""grad(f) for scalar functions of a list of floats, in the spirit of JAX and autograd.

f is written with ordinary arithmetic. Calling grad(f)(xs) wraps each input in a Box, runs f
on the boxes (which records the graph), then sweeps it backwards and returns df/dx for each
input. Nothing outlives the call: every call builds and throws away its own graph.
"""
import math


class Box:
    __slots__ = ("primal", "ct", "parents", "vjp")

    def __init__(self, primal, parents=(), vjp=None):
        self.primal = primal  # the value
        self.ct = 0.0  # cotangent: d(output)/d(this box), filled in by the sweep
        self.parents = parents
        self.vjp = vjp  # cotangent of this box -> the cotangents it sends to each parent

    def __add__(self, other):
        other = _box(other)
        return Box(self.primal + other.primal, (self, other), lambda ct: (ct, ct))

    def __mul__(self, other):
        other = _box(other)
        return Box(self.primal * other.primal, (self, other),
                   lambda ct: (ct * other.primal, ct * self.primal))

    def __pow__(self, k):
        return Box(self.primal ** k, (self,), lambda ct: (ct * k * self.primal ** (k - 1),))

    def __neg__(self):
        return self * -1.0

    def __sub__(self, other):
        return self + (-_box(other))

    __radd__ = __add__
    __rmul__ = __mul__


def _box(x):
    return x if isinstance(x, Box) else Box(float(x))


def tanh(x):
    if not isinstance(x, Box):
        return math.tanh(x)
    y = math.tanh(x.primal)
    return Box(y, (x,), lambda ct: (ct * (1.0 - y * y),))


def _toposort(end):
    """Parents before children, by an iterative post-order walk."""
    order, seen, stack = [], set(), [(end, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
        elif id(node) not in seen:
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((p, False) for p in reversed(node.parents))
    return order


def value_and_grad(f):
    def wrapped(xs):
        boxes = [Box(float(x)) for x in xs]
        end = f(boxes)
        end.ct = 1.0
        for node in reversed(_toposort(end)):
            if node.vjp is None:
                continue
            for parent, ct in zip(node.parents, node.vjp(node.ct)):
                parent.ct += ct
        return end.primal, [box.ct for box in boxes]
    return wrapped


def grad(f):
    return lambda xs: value_and_grad(f)(xs)[1]
