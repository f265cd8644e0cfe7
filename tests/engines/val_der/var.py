"""Var: a scalar that remembers how it was made.

    val      the number
    der      d(output)/d(this), filled in by backprop()
    parents  list of (parent, local) where local() gives d(this)/d(parent)
"""


class Var:
    def __init__(self, val, parents=()):
        self.val = float(val)
        self.der = 0.0
        self.parents = list(parents)

    def __repr__(self):
        return f"Var(val={self.val:.4f}, der={self.der:.4f})"

    # ---- arithmetic -------------------------------------------------------------
    def __add__(self, other):
        other = other if isinstance(other, Var) else Var(other)
        return Var(self.val + other.val, [(self, lambda: 1.0), (other, lambda: 1.0)])

    def __radd__(self, other):
        return self + other

    def __sub__(self, other):
        other = other if isinstance(other, Var) else Var(other)
        return Var(self.val - other.val, [(self, lambda: 1.0), (other, lambda: -1.0)])

    def __rsub__(self, other):
        return Var(other) - self

    def __mul__(self, other):
        other = other if isinstance(other, Var) else Var(other)
        return Var(self.val * other.val, [(self, lambda: other.val), (other, lambda: self.val)])

    def __rmul__(self, other):
        return self * other

    def __truediv__(self, other):
        other = other if isinstance(other, Var) else Var(other)
        return Var(self.val / other.val,
                   [(self, lambda: 1.0 / other.val), (other, lambda: -self.val / other.val ** 2)])

    def __rtruediv__(self, other):
        return Var(other) / self

    def __pow__(self, n):
        # n is a plain number
        return Var(self.val ** n, [(self, lambda: n * self.val ** (n - 1))])

    def __neg__(self):
        return self * -1.0

    # ---- reverse mode -----------------------------------------------------------
    def backprop(self, der=1.0):
        # topological order without recursion: a stack of (node, parents_done)
        order, visited = [], set()
        stack = [(self, False)]
        while stack:
            node, parents_done = stack.pop()
            if parents_done:
                order.append(node)
                continue
            if node in visited:
                continue
            visited.add(node)
            stack.append((node, True))
            for parent, _ in node.parents:
                if parent not in visited:
                    stack.append((parent, False))

        self.der = der
        for node in reversed(order):
            for parent, local in node.parents:
                parent.der += local() * node.der
