import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from corpus import Bug, Design

DESIGN = Design(
    name="functional_api",
    description="A notebook-style functional API: a Node with value, grad, parents and a backward_fn closure, "
                "free functions add/sub/mul/power/tanh that build nodes, an iterative-DFS topo_sort(root) and "
                "backward(root) that calls the backward_fns in reverse order.",
    backward_passes=3,
    script="train.py",
    bugs=(
        Bug("overwritten_grad", "autograd.py",
            "b.grad += out.grad * a.value",
            "b.grad = out.grad * a.value",
            note="mul overwrites b.grad"),
        Bug("wrong_derivative", "autograd.py",
            "a.grad += out.grad * b.value",
            "a.grad += out.grad * a.value",
            note="mul uses a.value for a"),
        Bug("wrong_derivative", "autograd.py",
            "a.grad += out.grad * (1 - t ** 2)",
            "a.grad += out.grad * (1 - a.value ** 2)",
            note="tanh uses the input instead of the output"),
        Bug("stale_gradient", "train.py",
            "p.grad = 0",
            "pass",
            at=("train.py", "backward(loss)"),
            note="zeroing removed"),
        Bug("stale_gradient", "train.py",
            "backward(loss)",
            "backward(loss); backward(loss)",
            note="backward called twice"),
        Bug("fired_outside_graph", "autograd.py",
            "    order = []",
            "    order = last_order",
            at=("autograd.py", "last_order = []"),
            note="topo_sort appends to the module-level list"),
    ),
)
