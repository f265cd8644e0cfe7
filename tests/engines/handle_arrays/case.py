import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from corpus import Bug, Design

DESIGN = Design(
    name="handle_arrays",
    description="Struct of arrays: a Graph owns flat lists of values, grads, input indices and eager partials, "
                "and nodes are slotted Handles whose value and grad are properties reading and writing "
                "graph.values[i] and graph.grads[i]; Graph.backward(out) sweeps the indices downwards, and "
                "the driver truncates the lists back to the parameters before each step.",
    backward_passes=3,
    bugs=(
        Bug("overwritten_grad", "flatgrad.py",
            "self.grads[j] += d * self.grads[i]",
            "self.grads[j] = d * self.grads[i]",
            note="the sweep overwrites an input's grad"),
        Bug("wrong_derivative", "flatgrad.py",
            "(self.index, other.index), (other.value, self.value))",
            "(self.index, other.index), (self.value, self.value))",
            note="mul's partial for self uses self.value"),
        Bug("wrong_derivative", "flatgrad.py",
            "return self.graph.node(t, (self.index,), (1 - t * t,))",
            "return self.graph.node(t, (self.index,), (1 - self.value ** 2,))",
            note="tanh uses the input instead of the output"),
        Bug("stale_gradient", "train.py",
            "        p.grad = 0.0",
            "        pass",
            at=("train.py", "    g.backward(loss)"),
            note="grad reset removed"),
        Bug("stale_gradient", "train.py",
            "    g.backward(loss)",
            "    g.backward(loss); g.backward(loss)",
            note="backward called twice"),
        Bug("fired_outside_graph", "train.py",
            "    g.truncate(n_params)  # drop last step's graph",
            "    pass  # drop last step's graph",
            note="last step's graph left in the arrays"),
    ),
)
