# my little autodiff: v = value, g = gradient, inputs = what I was made from
import math


class Node:
    def __init__(self, v, inputs=(), op="", k=None):
        self.v = v
        self.g = 0
        self.inputs = inputs
        self.op = op
        self.k = k  # exponent, only for op "**"

    def __repr__(self):
        return "Node(v=%.4f, g=%.4f, op=%r)" % (self.v, self.g, self.op)

    def __add__(self, o):
        o = o if isinstance(o, Node) else Node(o)
        return Node(self.v + o.v, (self, o), "+")

    def __radd__(self, o):
        return self + o

    def __sub__(self, o):
        o = o if isinstance(o, Node) else Node(o)
        return Node(self.v - o.v, (self, o), "-")

    def __mul__(self, o):
        o = o if isinstance(o, Node) else Node(o)
        return Node(self.v * o.v, (self, o), "*")

    def __rmul__(self, o):
        return self * o

    def __pow__(self, k):
        return Node(self.v ** k, (self,), "**", k)

    def tanh(self):
        return Node(math.tanh(self.v), (self,), "tanh")

    def local_grads(self):
        """d self / d input, for each input in order"""
        if self.op == "+":
            return (1, 1)
        if self.op == "-":
            return (1, -1)
        if self.op == "*":
            a, b = self.inputs
            return (b.v, a.v)
        if self.op == "**":
            (a,) = self.inputs
            return (self.k * a.v ** (self.k - 1),)
        if self.op == "tanh":
            return (1 - self.v ** 2,)
        return ()

    def backprop(self, bp):
        # bp = d(loss)/d(self) along the path we arrived by. Add it in, then pass it on.
        # A node reached by two paths is visited twice; that's fine, each visit
        # only forwards its own bp.
        self.g += bp
        for inp, d in zip(self.inputs, self.local_grads()):
            inp.backprop(bp * d)
