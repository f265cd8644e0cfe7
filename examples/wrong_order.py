"""A from-scratch engine whose backward functions return local gradients, visited in the
wrong order.

``grad`` collects the nodes with a depth-first search and visits them in the order it
*found* them (pre-order), not in reverse topological order. For w = (x*y + x) * (x*y)
at x = 3, y = 2, the node u = x*y passes on its gradient before z = u + x has added
its share to it, so dw/dx comes out 24 and dw/dy 27 where they are 36 and 45.

    trace-backward examples/wrong_order.py
"""


class Var:
    def __init__(self, value, inputs=(), grad_fn=None):
        self.value = value
        self.adjoint = 0.0
        self.inputs = inputs
        self.grad_fn = grad_fn  # takes the upstream adjoint, returns one gradient per input


def mul(a, b):
    return Var(a.value * b.value, (a, b), lambda g: (g * b.value, g * a.value))


def add(a, b):
    return Var(a.value + b.value, (a, b), lambda g: (g, g))


def grad(out):
    """Seed d out / d out = 1, then apply each node's rule: in the order found (the bug)."""
    order, seen, stack = [], set(), [out]
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        order.append(v)
        stack.extend(v.inputs)
    out.adjoint = 1.0
    for v in order:
        if v.grad_fn:
            for inp, g in zip(v.inputs, v.grad_fn(v.adjoint)):
                inp.adjoint += g


x = Var(3.0)
y = Var(2.0)
u = mul(x, y)
z = add(u, x)
w = mul(z, u)
grad(w)
print(f"dw/dx = {x.adjoint:g} (expected 36), dw/dy = {y.adjoint:g} (expected 45)")
