import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from corpus import Bug, Design

DESIGN = Design(
    name="scalar_stack",
    description="A micrograd clone under other names: a slotted Scalar with val, grad, a _children list and "
                "a _grad_fn closure per op, and backward() that orders the graph by an iterative depth-first "
                "search over a stack of (node, iterator) pairs.",
    backward_passes=3,
    bugs=(
        Bug("overwritten_grad", "scalar.py",
            "            other.grad += out.grad",
            "            other.grad = out.grad",
            note="add overwrites other.grad"),
        Bug("wrong_derivative", "scalar.py",
            "self.grad += other.val * out.grad",
            "self.grad += self.val * out.grad",
            note="mul uses self.val for self"),
        Bug("wrong_derivative", "scalar.py",
            "self.grad += (1 - t * t) * out.grad",
            "self.grad += (1 - x * x) * out.grad",
            note="tanh uses the input instead of the output"),
        Bug("stale_gradient", "train.py",
            "        p.grad = 0.0",
            "        pass",
            at=("train.py", "    loss.backward()"),
            note="grad reset removed"),
        Bug("stale_gradient", "train.py",
            "    loss.backward()",
            "    loss.backward(); loss.backward()",
            note="backward called twice"),
        Bug("fired_too_early", "scalar.py",
            "for node in reversed(topo):",
            "for node in topo:",
            note="backward walks the order forwards"),
    ),
)
