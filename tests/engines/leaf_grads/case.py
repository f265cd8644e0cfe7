import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from corpus import Bug, Design

DESIGN = Design(
    name="leaf_grads",
    description="PyTorch semantics on scalars: a Variable with data, requires_grad and grad=None until first "
                "written, a _vjp lambda per op returning the parents' grads; backward() keeps the grads of "
                "intermediate results in a local dict keyed by variable and writes .grad on leaves only, "
                "accumulating across backward() calls (one per example of a mini-batch) until zero_grad() "
                "sets them to None.",
    backward_passes=4,
    bugs=(
        Bug("overwritten_grad", "autograd.py",
            "grads[parent] = grads.get(parent, 0.0) + parent_grad",
            "grads[parent] = parent_grad",
            note="backward overwrites the intermediate grad"),
        Bug("overwritten_grad", "autograd.py",
            "v.grad = g if v.grad is None else v.grad + g",
            "v.grad = g",
            note="a leaf's grad is overwritten, not accumulated"),
        Bug("wrong_derivative", "autograd.py",
            "_vjp=lambda g: (g * other.data, g * self.data))",
            "_vjp=lambda g: (g * self.data, g * self.data))",
            note="mul uses self.data for self"),
        Bug("wrong_derivative", "autograd.py",
            "_vjp=lambda g: (g * (1 - t * t),))",
            "_vjp=lambda g: (g * (1 - x * x),))",
            note="tanh uses the input instead of the output"),
        Bug("stale_gradient", "train.py",
            "    zero_grad(params)",
            "    pass",
            at=("train.py", "        loss.backward()"),
            note="zero_grad removed"),
        Bug("stale_gradient", "train.py",
            "        loss.backward()",
            "        loss.backward(); loss.backward()",
            note="backward called twice"),
    ),
)
