import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from corpus import Bug, Design

DESIGN = Design(
    name="closures_set_parents",
    description="A micrograd-style Value with a _backward closure per node, children kept in a set (_prev), "
                "and backward() that builds a topological order recursively and calls the closures in reverse.",
    backward_passes=3,
    bugs=(
        Bug("overwritten_grad", "engine.py",
            "self.grad += out.grad",
            "self.grad = out.grad",
            note="add overwrites self.grad",
            deterministic=False),  # which write survives depends on the set's order, by address
        Bug("wrong_derivative", "engine.py",
            "self.grad += other.data * out.grad",
            "self.grad += self.data * out.grad",
            note="mul uses self.data"),
        Bug("wrong_derivative", "engine.py",
            "self.grad += (1 - t**2) * out.grad",
            "self.grad += (1 - x**2) * out.grad",
            note="tanh uses x instead of t"),
        Bug("stale_gradient", "train.py",
            "p.grad = 0.0",
            "pass",
            at=("train.py", "loss.backward()"),
            note="zero_grad removed"),
        Bug("stale_gradient", "train.py",
            "loss.backward()",
            "loss.backward(); loss.backward()",
            note="backward called twice"),
    ),
)
