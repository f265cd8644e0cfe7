# a scalar take on early tinygrad: a Tensor, and Functions that remember their inputs in a context
from functools import partialmethod

_visit_order = []  # filled by deepwalk's helper; kept around to print when debugging


class Tensor:
    def __init__(self, data, requires_grad=True):
        self.data = float(data)
        self.grad = None
        self.requires_grad = requires_grad
        # the Function that made this tensor, if any: it holds the parents and the saved values
        self._ctx = None

    def __repr__(self):
        return f"<Tensor {self.data!r} with grad {self.grad!r}>"

    def deepwalk(self):
        def _deepwalk(node, visited, nodes):
            visited.add(node)
            if node._ctx:
                for i in node._ctx.parents:
                    if i not in visited:
                        _deepwalk(i, visited, nodes)
                nodes.append(node)
            return nodes
        return _deepwalk(self, set(), [])

    def backward(self):
        # fill in the first grad with one
        self.grad = 1.0
        for t0 in reversed(self.deepwalk()):
            grads = t0._ctx.backward(t0._ctx, t0.grad)
            if len(t0._ctx.parents) == 1:
                grads = [grads]
            for t, g in zip(t0._ctx.parents, grads):
                if g is None or not t.requires_grad:
                    continue
                t.grad = g if t.grad is None else t.grad + g

    def zero_grad(self):
        self.grad = None


class Function:
    def __init__(self, *tensors):
        self.parents = tensors
        self.saved_tensors = []

    def save_for_backward(self, *x):
        self.saved_tensors.extend(x)

    def apply(self, arg, *x):
        # self is the tensor on the left; x holds the rest (plain numbers become tensors)
        x = [t if isinstance(t, Tensor) else Tensor(t, requires_grad=False) for t in x]
        ctx = arg(self, *x)
        ret = Tensor(arg.forward(ctx, self.data, *[t.data for t in x]))
        ret._ctx = ctx
        return ret


def register(name, fxn):
    setattr(Tensor, name, partialmethod(fxn.apply, fxn))
