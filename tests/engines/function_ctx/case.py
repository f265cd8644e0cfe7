import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from corpus import Bug, Design

DESIGN = Design(
    name="function_ctx",
    description="Early-tinygrad style on scalars: a Tensor with data, grad (None until written), "
                "requires_grad and _ctx; Function subclasses with static forward(ctx, ...) and "
                "backward(ctx, grad_output) that save values with ctx.save_for_backward, attached to "
                "Tensor by register() through partialmethod; backward() walks a recursive nested "
                "deepwalk and sums the returned grads into the parents.",
    backward_passes=3,
    bugs=(
        Bug("overwritten_grad", "tensor.py",
            "t.grad = g if t.grad is None else t.grad + g",
            "t.grad = g",
            note="backward overwrites the parent's grad"),
        Bug("wrong_derivative", "ops.py",
            "return y * grad_output, x * grad_output",
            "return x * grad_output, x * grad_output",
            note="Mul uses x for x"),
        Bug("wrong_derivative", "ops.py",
            "return grad_output * (1 - t * t)",
            "return grad_output * (1 - x * x)",
            note="Tanh uses the input instead of the output"),
        Bug("stale_gradient", "train.py",
            "            t.zero_grad()",
            "            pass",
            at=("train.py", "    loss.backward()"),
            note="zero_grad does nothing"),
        Bug("stale_gradient", "train.py",
            "    loss.backward()",
            "    loss.backward(); loss.backward()",
            note="backward called twice"),
        Bug("fired_outside_graph", "tensor.py",
            "return _deepwalk(self, set(), [])",
            "return _deepwalk(self, set(), _visit_order)",
            at=("tensor.py", "_visit_order = []"),
            note="deepwalk appends to the module-level list"),
    ),
)
