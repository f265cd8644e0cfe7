import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from corpus import Bug, Design

DESIGN = Design(
    name="inline_id_map",
    description="A percent-format notebook (# %% cells) that defines its engine inline: a Num with x and dx "
                "whose inputs and eagerly computed local derivatives live in a module-level EDGES dict keyed "
                "by id(num); backprop() builds its order in a nested function (itself holding a recursive "
                "visit) and adds local * num.dx into each input. A check cell runs one backprop before "
                "training.",
    backward_passes=4,
    bugs=(
        Bug("overwritten_grad", "train.py",
            "                parent.dx += local * num.dx",
            "                parent.dx = local * num.dx",
            note="backprop overwrites parent.dx"),
        Bug("wrong_derivative", "train.py",
            "[(self, other.x), (other, self.x)]",
            "[(self, self.x), (other, self.x)]",
            note="mul's local derivative for self uses self.x"),
        Bug("wrong_derivative", "train.py",
            "return Num(t, [(self, 1 - t ** 2)])",
            "return Num(t, [(self, 1 - self.x ** 2)])",
            note="tanh uses the input instead of the output"),
        Bug("stale_gradient", "train.py",
            "        p.dx = 0.0",
            "        pass",
            at=("train.py", "    loss.backprop()"),
            note="dx reset removed"),
        Bug("stale_gradient", "train.py",
            "    loss.backprop()",
            "    loss.backprop(); loss.backprop()",
            note="backprop called twice"),
        Bug("fired_too_early", "train.py",
            "        for num in reversed(build_order()):",
            "        for num in build_order():",
            note="backprop walks the order forwards"),
    ),
)
