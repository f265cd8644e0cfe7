import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from corpus import Bug, Design

DESIGN = Design(
    name="dataclass_registry",
    description="A @dataclass Node (value, grad, op name, args tuple, extra dict) with no code of its own: "
                "each op's derivative rule is registered by a @rule(op) decorator into a RULES dict, and a "
                "free reverse(root) builds its order in a nested recursive function and looks each node's "
                "rule up by op name.",
    backward_passes=3,
    bugs=(
        Bug("overwritten_grad", "ops.py",
            "    b.grad += node.grad",
            "    b.grad = node.grad",
            note="add's rule overwrites b.grad"),
        Bug("wrong_derivative", "ops.py",
            "a.grad += b.value * node.grad",
            "a.grad += a.value * node.grad",
            note="mul's rule uses a.value for a"),
        Bug("wrong_derivative", "ops.py",
            "a.grad += (1 - node.value ** 2) * node.grad",
            "a.grad += (1 - a.value ** 2) * node.grad",
            note="tanh's rule uses the input instead of the output"),
        Bug("stale_gradient", "train.py",
            "        p.grad = 0.0",
            "        pass",
            at=("train.py", "    reverse(loss)"),
            note="grad reset removed"),
        Bug("stale_gradient", "train.py",
            "    reverse(loss)",
            "    reverse(loss); reverse(loss)",
            note="reverse called twice"),
        Bug("fired_too_early", "nodes.py",
            "    for node in reversed(order):",
            "    for node in order:",
            note="reverse walks the order forwards"),
    ),
)
