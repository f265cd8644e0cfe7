import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from corpus import Bug, Design

DESIGN = Design(
    name="val_der",
    description="A from-scratch Var with val, der and parents as (parent, local-derivative function) pairs, elementary functions in a separate module, and a backprop(self, der=1.0) method that builds a topological order with an explicit stack and adds local() * node.der into each parent's der in reverse.",
    backward_passes=3,
    script="train.py",
    bugs=(
        Bug("overwritten_grad", "var.py",
            "                parent.der += local() * node.der",
            "                parent.der = local() * node.der",
            note="backprop overwrites parent.der"),
        Bug("wrong_derivative", "var.py",
            "[(self, lambda: other.val), (other, lambda: self.val)]",
            "[(self, lambda: self.val), (other, lambda: self.val)]",
            note="mul's local derivative for self uses self.val"),
        Bug("wrong_derivative", "functions.py",
            "    return Var(t, [(x, lambda: 1 - t ** 2)])",
            "    return Var(t, [(x, lambda: 1 - x.val ** 2)])",
            note="tanh uses the input instead of the output"),
        Bug("stale_gradient", "train.py",
            "        p.der = 0.0",
            "        pass",
            at=("train.py", "    loss.backprop()"),
            note="der reset removed"),
        Bug("stale_gradient", "train.py",
            "    loss.backprop()",
            "    loss.backprop(); loss.backprop()",
            note="backprop called twice"),
        Bug("fired_too_early", "var.py",
            "        for node in reversed(order):",
            "        for node in order:",
            note="backprop walks the topological order forwards"),
    ),
)
