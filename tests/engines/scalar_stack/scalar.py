"""A scalar autograd engine after micrograd: slots, a list of children, no recursion."""
import math


class Scalar:
    __slots__ = ("val", "grad", "_children", "_grad_fn", "label")

    def __init__(self, val, children=(), label=""):
        self.val = val
        self.grad = 0.0
        self._children = list(children)  # the Scalars this one was computed from
        self._grad_fn = None  # pushes self.grad into the children's grads
        self.label = label

    def __repr__(self):
        return f"Scalar({self.label or '?'}: val={self.val:.4f}, grad={self.grad:.4f})"

    @staticmethod
    def wrap(x):
        return x if isinstance(x, Scalar) else Scalar(x)

    def __add__(self, other):
        other = Scalar.wrap(other)
        out = Scalar(self.val + other.val, [self, other])

        def _grad_fn():
            self.grad += out.grad
            other.grad += out.grad
        out._grad_fn = _grad_fn
        return out

    def __mul__(self, other):
        other = Scalar.wrap(other)
        out = Scalar(self.val * other.val, [self, other])

        def _grad_fn():
            self.grad += other.val * out.grad
            other.grad += self.val * out.grad
        out._grad_fn = _grad_fn
        return out

    def __pow__(self, k):
        assert isinstance(k, (int, float)), "only constant powers"
        out = Scalar(self.val ** k, [self])

        def _grad_fn():
            self.grad += k * self.val ** (k - 1) * out.grad
        out._grad_fn = _grad_fn
        return out

    def tanh(self):
        x = self.val
        t = math.tanh(x)
        out = Scalar(t, [self])

        def _grad_fn():
            self.grad += (1 - t * t) * out.grad
        out._grad_fn = _grad_fn
        return out

    def __neg__(self):  # -self
        return self * -1

    def __radd__(self, other):  # other + self
        return self + other

    def __sub__(self, other):  # self - other
        return self + (-other)

    def __rsub__(self, other):  # other - self
        return other + (-self)

    def __rmul__(self, other):  # other * self
        return self * other

    def __truediv__(self, other):  # self / other
        return self * other ** -1

    def backward(self):
        # depth-first post-order with an explicit stack of (node, iterator over children)
        topo, seen = [], {id(self)}
        stack = [(self, iter(self._children))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                topo.append(node)
            elif id(child) not in seen:
                seen.add(id(child))
                stack.append((child, iter(child._children)))

        self.grad = 1.0
        for node in reversed(topo):
            if node._grad_fn is not None:
                node._grad_fn()
