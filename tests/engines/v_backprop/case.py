import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from corpus import Bug, Design

DESIGN = Design(
    name="v_backprop",
    description="A Node with value .v, gradient .g and .inputs whose recursive backprop(bp) adds the incoming bp "
                "into .g and sends bp times each local derivative on to its inputs, once per path.",
    backward_passes=3,
    script="train.py",
    bugs=(
        Bug("overwritten_grad", "nn.py",
            "self.g += bp",
            "self.g = bp",
            note="backprop overwrites .g"),
        Bug("fired_twice", "nn.py",
            "inp.backprop(bp * d)",
            "inp.backprop(self.g * d)",
            note="re-sends the accumulated .g instead of bp"),
        Bug("wrong_derivative", "nn.py",
            "return (b.v, a.v)",
            "return (a.v, a.v)",
            note="mul uses a.v for a"),
        Bug("wrong_derivative", "nn.py",
            "return (1 - self.v ** 2,)",
            "return (1 - self.inputs[0].v ** 2,)",
            note="tanh uses the input instead of the output"),
        Bug("stale_gradient", "train.py",
            "p.g = 0",
            "pass",
            at=("train.py", "loss.backprop(1.0)"),
            note="zeroing removed"),
        Bug("stale_gradient", "train.py",
            "loss.backprop(1.0)",
            "loss.backprop(1.0); loss.backprop(1.0)",
            note="backprop called twice"),
    ),
)
