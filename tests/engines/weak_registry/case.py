import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from corpus import Bug, Design

DESIGN = Design(
    name="weak_registry",
    description="A slotted Tensor0 (data, grad, _prev, _op, __weakref__) whose derivative rules are methods "
                "_back_<op> dispatched by getattr on the op name; every node is entered in a "
                "weakref.WeakValueDictionary and the driver prints how many nodes are still alive after "
                "each step (gc.collect()), so anything that keeps nodes alive changes the output.",
    backward_passes=3,
    bugs=(
        Bug("overwritten_grad", "engine.py",
            "        b.grad += self.grad",
            "        b.grad = self.grad",
            note="add overwrites b.grad"),
        Bug("wrong_derivative", "engine.py",
            "a.grad += b.data * self.grad",
            "a.grad += a.data * self.grad",
            note="mul uses a.data for a"),
        Bug("wrong_derivative", "engine.py",
            "a.grad += (1 - self.data ** 2) * self.grad",
            "a.grad += (1 - a.data ** 2) * self.grad",
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
            "        for node in reversed(topo):",
            "        for node in topo:",
            note="backward walks the order forwards"),
    ),
)
