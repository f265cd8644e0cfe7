import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from corpus import Bug, Design

DESIGN = Design(
    name="lazy_pull",
    description="Pull-based reverse mode: each Var keeps a list of (weight, child) consumers and grad() sums "
                "weight * child.grad() on demand, caching the result in grad_value; the output is seeded "
                "with grad_value = 1.0.",
    backward_passes=3,
    bugs=(
        Bug("overwritten_grad", "engine.py",
            "total += weight * child.grad()",
            "total = weight * child.grad()",
            note="grad() keeps only the last consumer"),
        Bug("wrong_derivative", "engine.py",
            "self.children.append((other.value, z))",
            "self.children.append((self.value, z))",
            note="mul weight uses self.value"),
        Bug("wrong_derivative", "engine.py",
            "x.children.append((1 - t ** 2, z))",
            "x.children.append((1 - x.value ** 2, z))",
            note="tanh weight uses the input instead of the output"),
        Bug("stale_gradient", "engine.py",
            "self.grad_value = None  # forget the memo",
            "pass",
            at=("train.py", "grads = [p.grad() for p in params]"),
            note="zero_grad forgets to reset the cached grad"),
        Bug("fired_outside_graph", "engine.py",
            "self.children = []  # and the consumers from the last graph",
            "pass",
            at=("engine.py", "self.children = []  # (weight, child)"),
            note="zero_grad keeps last step's consumers"),
    ),
)
