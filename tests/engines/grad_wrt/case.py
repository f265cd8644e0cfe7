import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from corpus import Bug, Design

DESIGN = Design(
    name="grad_wrt",
    description="Nodes store their local derivatives at creation in a grad_wrt dict ({parent: local derivative}), and one op-agnostic backward(root) builds a topological order and does parent.grad += node.grad * local for every node in reverse.",
    backward_passes=3,
    script="train.py",
    bugs=(
        Bug("overwritten_grad", "engine.py",
            "            parent.grad += node.grad * local",
            "            parent.grad = node.grad * local",
            note="backward overwrites parent.grad"),
        Bug("wrong_derivative", "engine.py",
            "_local((a, b.value), (b, a.value))",
            "_local((a, a.value), (b, a.value))",
            note="mul stores a's value as d/da"),
        Bug("wrong_derivative", "engine.py",
            "    return Node(t, _local((a, 1 - t ** 2)))",
            "    return Node(t, _local((a, 1 - a.value ** 2)))",
            note="tanh uses the input instead of the output"),
        Bug("stale_gradient", "train.py",
            "        p.grad = 0",
            "        pass",
            at=("train.py", "    backward(loss)"),
            note="grad reset removed"),
        Bug("stale_gradient", "train.py",
            "    backward(loss)",
            "    backward(loss); backward(loss)",
            note="backward called twice"),
        Bug("fired_too_early", "engine.py",
            "    for node in reversed(order):",
            "    for node in order:",
            note="backward walks the topological order forwards"),
    ),
)
