import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from corpus import Bug, Design

DESIGN = Design(
    name="minitorch_scalar",
    description="A minitorch-style Scalar whose ScalarHistory records the ScalarFunction, its Context and inputs; "
                "backpropagate() topologically sorts by unique_id, collects derivatives in a dict and writes "
                ".derivative only on leaves through accumulate_derivative.",
    backward_passes=3,
    bugs=(
        Bug("overwritten_grad", "autodiff.py",
            "derivatives[inp.unique_id] += d",
            "derivatives[inp.unique_id] = d",
            note="derivatives dict overwritten"),
        Bug("wrong_derivative", "scalar_functions.py",
            "return b * d_output, a * d_output",
            "return a * d_output, a * d_output",
            note="Mul uses a for a's derivative"),
        Bug("wrong_derivative", "scalar_functions.py",
            "return (1.0 - t * t) * d_output",
            "return (1.0 - a * a) * d_output",
            note="Tanh uses the input instead of the output"),
        Bug("stale_gradient", "train.py",
            "p.derivative = None",
            "pass",
            at=("train.py", "loss.backward()"),
            note="derivative reset removed"),
        Bug("stale_gradient", "train.py",
            "loss.backward()",
            "loss.backward(); loss.backward()",
            note="backward called twice"),
    ),
)
