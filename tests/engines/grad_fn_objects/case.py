import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from corpus import Bug, Design

DESIGN = Design(
    name="grad_fn_objects",
    description="A PyTorch-like Scalar whose results carry a grad_fn object (AddBackward, MulBackward, "
                "TanhBackward, ...) whose apply(grad) returns the inputs' gradients; backward() visits the "
                "Scalars in reverse topological order and accumulates those into .grad.",
    backward_passes=3,
    bugs=(
        Bug("overwritten_grad", "tinytorch.py",
            "self.grad += g",
            "self.grad = g",
            note="accumulate_grad overwrites"),
        Bug("wrong_derivative", "functions.py",
            "return grad_output * self.b_val, grad_output * self.a_val",
            "return grad_output * self.a_val, grad_output * self.a_val",
            note="MulBackward uses a's value for a"),
        Bug("wrong_derivative", "functions.py",
            "return (grad_output * (1 - self.result ** 2),)",
            "return (grad_output * (1 - self.a_val ** 2),)",
            note="TanhBackward uses the input instead of the result"),
        Bug("stale_gradient", "train.py",
            "opt.zero_grad()",
            "pass",
            at=("train.py", "loss.backward()"),
            note="zero_grad removed"),
        Bug("stale_gradient", "train.py",
            "loss.backward()",
            "loss.backward(); loss.backward()",
            note="backward called twice"),
        Bug("fired_too_early", "tinytorch.py",
            "USE_TOPO_ORDER = True",
            "USE_TOPO_ORDER = False",
            at=("tinytorch.py", "inp._backward_recursive()"),
            note="recursive backward without a topological order"),
    ),
)
