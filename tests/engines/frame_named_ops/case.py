import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from corpus import Bug, Design

DESIGN = Design(
    name="frame_named_ops",
    description="A micrograd-like Value whose constructor names its own op from the method that called it "
                "(sys._getframe(1).f_code.co_name: __mul__ -> '*'), and a driver that prints one loss term "
                "written out with those symbols: anything that wraps the constructor in a frame of its own "
                "changes the printed expression.",
    backward_passes=3,
    bugs=(
        Bug("overwritten_grad", "engine.py",
            "            other.grad += out.grad",
            "            other.grad = out.grad",
            note="add overwrites other.grad"),
        Bug("wrong_derivative", "engine.py",
            "self.grad += other.data * out.grad",
            "self.grad += self.data * out.grad",
            note="mul uses self.data for self"),
        Bug("wrong_derivative", "engine.py",
            "self.grad += (1 - t ** 2) * out.grad",
            "self.grad += (1 - x ** 2) * out.grad",
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
        Bug("fired_too_early", "engine.py",
            "        for v in reversed(topo):",
            "        for v in topo:",
            note="backward walks the order forwards"),
    ),
)
