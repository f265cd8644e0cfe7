import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from corpus import Bug, Design

DESIGN = Design(
    name="value_adjoint",
    description="A __slots__ Node with value, adjoint, inputs and rule, where the rule is a module-level function that receives the node and pushes its adjoint into its inputs, and backward(root) runs the rules in reverse of a topological order found with an explicit stack.",
    backward_passes=3,
    script="train.py",
    bugs=(
        Bug("overwritten_grad", "engine.py",
            "    b.adjoint += a.value * node.adjoint",
            "    b.adjoint = a.value * node.adjoint",
            note="mul_rule overwrites b.adjoint"),
        Bug("wrong_derivative", "engine.py",
            "    a.adjoint += b.value * node.adjoint",
            "    a.adjoint += a.value * node.adjoint",
            note="mul_rule uses a.value for a"),
        Bug("wrong_derivative", "engine.py",
            "    a.adjoint += (1.0 - node.value ** 2) * node.adjoint",
            "    a.adjoint += (1.0 - a.value ** 2) * node.adjoint",
            note="tanh_rule uses the input instead of the output"),
        Bug("stale_gradient", "train.py",
            "        p.adjoint = 0.0",
            "        pass",
            at=("train.py", "    backward(loss)"),
            note="adjoint reset removed"),
        Bug("stale_gradient", "train.py",
            "    backward(loss)",
            "    backward(loss); backward(loss)",
            note="backward called twice"),
        Bug("fired_too_early", "engine.py",
            "    for node in reversed(order):",
            "    for node in order:",
            note="rules run in topological order instead of its reverse"),
    ),
)
