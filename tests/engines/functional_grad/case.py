import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from corpus import Bug, Design

DESIGN = Design(
    name="functional_grad",
    description="A JAX-like value_and_grad(f)(params): the parameters are plain floats, each call wraps "
                "them in slotted Boxes (primal, ct, parents, vjp lambda), runs f, sweeps the graph it "
                "recorded in reverse and returns the inputs' cotangents; the driver never touches a grad "
                "attribute and never zeroes anything.",
    backward_passes=3,
    bugs=(
        Bug("overwritten_grad", "minijax.py",
            "                parent.ct += ct",
            "                parent.ct = ct",
            note="the sweep overwrites a parent's cotangent"),
        Bug("wrong_derivative", "minijax.py",
            "lambda ct: (ct * other.primal, ct * self.primal))",
            "lambda ct: (ct * self.primal, ct * self.primal))",
            note="mul uses self.primal for self"),
        Bug("wrong_derivative", "minijax.py",
            "lambda ct: (ct * (1.0 - y * y),))",
            "lambda ct: (ct * (1.0 - x.primal ** 2),))",
            note="tanh uses the input instead of the output"),
        Bug("fired_too_early", "minijax.py",
            "        for node in reversed(_toposort(end)):",
            "        for node in _toposort(end):",
            note="the sweep walks the order forwards"),
    ),
)
