import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from corpus import Bug, Design

DESIGN = Design(
    name="op_classes",
    description="One class per operation (Add, Mul, Pow, Tanh; leaves Var and Const) with a parents() method "
                "and a backward(grad) that returns one gradient per parent, which a free backprop(root) "
                "adds into each parent's .grad in topological order.",
    backward_passes=4,
    bugs=(
        Bug("overwritten_grad", "autodiff.py",
            "parent.grad += g",
            "parent.grad = g",
            note="backprop overwrites parent.grad"),
        Bug("wrong_derivative", "graph.py",
            "return (grad * self.b.value, grad * self.a.value)",
            "return (grad * self.a.value, grad * self.a.value)",
            note="Mul uses a's value for a"),
        Bug("wrong_derivative", "graph.py",
            "return (grad * (1 - self.value ** 2),)",
            "return (grad * (1 - self.arg.value ** 2),)",
            note="Tanh uses the input instead of the output"),
        Bug("stale_gradient", "train.py",
            "p.zero_grad()",
            "pass",
            at=("train.py", "backprop(loss)"),
            note="zero_grad removed"),
        Bug("stale_gradient", "train.py",
            "backprop(loss)",
            "backprop(loss); backprop(loss)",
            note="backprop called twice"),
    ),
)
