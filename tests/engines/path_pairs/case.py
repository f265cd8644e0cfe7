import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from corpus import Bug, Design

DESIGN = Design(
    name="path_pairs",
    description="Each Node stores (parent, local_gradient) pairs computed when it is created, and gradients(root) "
                "recurses over every path from the root, summing path products into a {node: grad} dict that "
                "the training loop copies into p.grad.",
    backward_passes=3,
    bugs=(
        Bug("overwritten_grad", "engine.py",
            "grads[parent] = grads.get(parent, 0.0) + through",
            "grads[parent] = through",
            note="path sum keeps only the last path"),
        Bug("wrong_derivative", "engine.py",
            "return Node(self.value * other.value, ((self, other.value), (other, self.value)))",
            "return Node(self.value * other.value, ((self, self.value), (other, self.value)))",
            note="mul's local gradient for self uses self.value"),
        Bug("wrong_derivative", "engine.py",
            "return Node(t, ((a, 1 - t * t),))",
            "return Node(t, ((a, 1 - a.value * a.value),))",
            note="tanh's local gradient uses the input instead of the output"),
        Bug("stale_gradient", "engine.py",
            "return _walk(root, 1.0, {})",
            "return _walk(root, 1.0)",
            at=("train.py", "grads = gradients(loss)"),
            note="gradients() reuses the mutable default dict"),
    ),
)
