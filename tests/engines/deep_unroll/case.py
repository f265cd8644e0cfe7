import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from corpus import Bug, Design

DESIGN = Design(
    name="deep_unroll",
    description="micrograd's Value as typed out from the lecture (recursive build_topo, _prev a set), driven "
                "by a one-unit recurrent net unrolled over 240 steps: the graph is about 960 levels deep, so "
                "build_topo runs within some 30 frames of the default recursion limit.",
    backward_passes=2,
    bugs=(
        Bug("overwritten_grad", "micro.py",
            "            other.grad += 1.0 * out.grad",
            "            other.grad = 1.0 * out.grad",
            note="add overwrites other.grad"),
        Bug("wrong_derivative", "micro.py",
            "self.grad += other.data * out.grad",
            "self.grad += self.data * out.grad",
            note="mul uses self.data for self"),
        Bug("wrong_derivative", "micro.py",
            "self.grad += (1 - t**2) * out.grad",
            "self.grad += (1 - x**2) * out.grad",
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
        Bug("fired_too_early", "micro.py",
            "        for node in reversed(topo):",
            "        for node in topo:",
            note="backward walks the order forwards"),
    ),
)
