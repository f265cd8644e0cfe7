import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from corpus import Bug, Design

DESIGN = Design(
    name="compare_nodes",
    description="A Value (data, grad, _prev tuple, _backward closure) whose comparisons build nodes too "
                "(x > 0 and x == y return Values, __hash__ restored to identity), relu written as "
                "x * (x > 0), every Value numbered from a class counter that the driver prints: a tool that "
                "compares nodes with == or makes Values of its own changes the output. backward() walks an "
                "explicit stack of (node, next-parent index) pairs.",
    backward_passes=3,
    bugs=(
        Bug("overwritten_grad", "value.py",
            "            other.grad += out.grad",
            "            other.grad = out.grad",
            note="add overwrites other.grad"),
        Bug("wrong_derivative", "value.py",
            "self.grad += other.data * out.grad",
            "self.grad += self.data * out.grad",
            note="mul uses self.data for self"),
        Bug("wrong_derivative", "value.py",
            "self.grad += k * self.data ** (k - 1) * out.grad",
            "self.grad += k * out.data ** (k - 1) * out.grad",
            note="pow uses the output instead of the input"),
        Bug("stale_gradient", "train.py",
            "        p.grad = 0.0",
            "        pass",
            at=("train.py", "    loss.backward()"),
            note="grad reset removed"),
        Bug("stale_gradient", "train.py",
            "    loss.backward()",
            "    loss.backward(); loss.backward()",
            note="backward called twice"),
        Bug("fired_too_early", "value.py",
            "        for node in reversed(order):",
            "        for node in order:",
            note="backward walks the order forwards"),
    ),
)
