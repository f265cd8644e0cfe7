import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from corpus import Bug, Design

DESIGN = Design(
    name="kahn_queue",
    description="A Var with value, gradient, a sources tuple and a _back(g) closure per op, and a propagate() "
                "method that counts each node's consumers breadth-first and then sweeps with Kahn's algorithm "
                "over a deque: no topological list, no recursion.",
    backward_passes=4,
    bugs=(
        Bug("overwritten_grad", "autodiff.py",
            "            other.gradient += g\n",
            "            other.gradient = g\n",
            at=("autodiff.py", "other.gradient = g"),
            note="add overwrites other.gradient"),
        Bug("wrong_derivative", "autodiff.py",
            "self.gradient += g * other.value",
            "self.gradient += g * self.value",
            note="mul uses self.value for self"),
        Bug("wrong_derivative", "autodiff.py",
            "self.gradient += g * (1.0 - y * y)",
            "self.gradient += g * (1.0 - self.value ** 2)",
            note="tanh uses the input instead of the output"),
        Bug("stale_gradient", "train.py",
            "        p.gradient = 0.0",
            "        pass",
            at=("train.py", "    total.propagate()"),
            note="gradient reset removed"),
        Bug("stale_gradient", "train.py",
            "    total.propagate()",
            "    total.propagate(); total.propagate()",
            note="propagate called twice"),
        Bug("fired_too_early", "autodiff.py",
            "if waiting[src] == 0:  # every consumer has been processed",
            "if waiting[src] >= 0:  # every consumer has been processed",
            note="a node is processed before all its consumers are"),
    ),
)
