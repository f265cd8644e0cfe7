import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from corpus import Bug, Design

DESIGN = Design(
    name="dataclass_checkpoint",
    description="A Value written as a plain @dataclass (value, grad, deps, backward_step fields; the generated "
                "__eq__ makes it unhashable, so backward() keys its iterative walk on id()), and a driver that "
                "keeps copy.deepcopy of the parameters at the best loss and prints their dataclass repr, "
                "grads included, and compares them with ==.",
    backward_passes=4,
    bugs=(
        Bug("overwritten_grad", "value.py",
            "            other.grad += out.grad",
            "            other.grad = out.grad",
            note="add overwrites other.grad"),
        Bug("wrong_derivative", "value.py",
            "self.grad += other.value * out.grad",
            "self.grad += self.value * out.grad",
            note="mul uses self.value for self"),
        Bug("wrong_derivative", "value.py",
            "self.grad += (1 - t ** 2) * out.grad",
            "self.grad += (1 - self.value ** 2) * out.grad",
            note="tanh uses the input instead of the output"),
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
