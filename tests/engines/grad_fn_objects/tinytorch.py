"""A scalar 'tensor' with PyTorch-ish autograd: every result carries a grad_fn."""
from functions import AddBackward, MulBackward, PowBackward, SubBackward, TanhBackward, tanh

# the recursive version double-counts shared nodes, keep the topo one on
USE_TOPO_ORDER = True


class Scalar:
    def __init__(self, data, requires_grad=False, grad_fn=None):
        self.data = float(data)
        self.requires_grad = requires_grad
        self.grad_fn = grad_fn
        self.grad = None

    def __repr__(self):
        extra = f", grad_fn={self.grad_fn}" if self.grad_fn else ""
        return f"Scalar({self.data:.4f}{extra})"

    @staticmethod
    def _lift(x):
        return x if isinstance(x, Scalar) else Scalar(x)

    def _result(self, value, make_fn, *inputs):
        if any(t.requires_grad for t in inputs):
            return Scalar(value, requires_grad=True, grad_fn=make_fn())
        return Scalar(value)

    def __add__(self, other):
        other = self._lift(other)
        return self._result(self.data + other.data, lambda: AddBackward(self, other), self, other)

    __radd__ = __add__

    def __sub__(self, other):
        other = self._lift(other)
        return self._result(self.data - other.data, lambda: SubBackward(self, other), self, other)

    def __mul__(self, other):
        other = self._lift(other)
        return self._result(self.data * other.data, lambda: MulBackward(self, other), self, other)

    __rmul__ = __mul__

    def __pow__(self, exponent):
        return self._result(self.data ** exponent, lambda: PowBackward(self, exponent), self)

    def tanh(self):
        t = tanh(self.data)
        return self._result(t, lambda: TanhBackward(self, t), self)

    def accumulate_grad(self, g):
        if self.grad is None:
            self.grad = 0.0
        self.grad += g

    def backward(self):
        self.grad = 1.0
        if USE_TOPO_ORDER:
            for node in reversed(_topo_order(self)):
                node._apply_grad_fn()
        else:
            self._backward_recursive()

    def _apply_grad_fn(self):
        if self.grad_fn is None:
            return
        grads = self.grad_fn.apply(self.grad)
        for inp, g in zip(self.grad_fn.inputs, grads):
            if inp.requires_grad:
                inp.accumulate_grad(g)

    def _backward_recursive(self):
        # old version: push my grad down, then let each input do the same
        if self.grad_fn is None:
            return
        grads = self.grad_fn.apply(self.grad)
        for inp, g in zip(self.grad_fn.inputs, grads):
            if inp.requires_grad:
                inp.accumulate_grad(g)
                inp._backward_recursive()


def _topo_order(root):
    order, visited = [], set()

    def dfs(t):
        if id(t) in visited:
            return
        visited.add(id(t))
        if t.grad_fn is not None:
            for inp in t.grad_fn.inputs:
                dfs(inp)
        order.append(t)

    dfs(root)
    return order


class SGD:
    def __init__(self, params, lr):
        self.params = list(params)
        self.lr = lr

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        for p in self.params:
            if p.grad is not None:
                p.data -= self.lr * p.grad
