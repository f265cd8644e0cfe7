import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from corpus import Bug, Design

DESIGN = Design(
    name="module_params",
    description="A micrograd-like Node (data, grad, a _from tuple, a _chain closure) with a Parameter subclass "
                "that carries a name; Module.parameters() finds parameters by walking vars(self), and an SGD "
                "class holds them for zero_grad() and step(). A 2-2-1 net built from Neuron modules; backward() "
                "runs a recursive module-level topo_sort(v, visited=None, order=None).",
    backward_passes=3,
    bugs=(
        Bug("overwritten_grad", "autograd.py",
            "            self.grad += out.grad",
            "            self.grad = out.grad",
            note="add overwrites self.grad"),
        Bug("wrong_derivative", "autograd.py",
            "self.grad += other.data * out.grad",
            "self.grad += self.data * out.grad",
            note="mul uses self.data for self"),
        Bug("wrong_derivative", "autograd.py",
            "self.grad += (1 - y ** 2) * out.grad",
            "self.grad += (1 - x ** 2) * out.grad",
            note="tanh uses the input instead of the output"),
        Bug("stale_gradient", "nn.py",
            "            p.grad = 0",
            "            pass",
            at=("train.py", "    loss.backward()"),
            note="zero_grad does nothing"),
        Bug("stale_gradient", "train.py",
            "    loss.backward()",
            "    loss.backward(); loss.backward()",
            note="backward called twice"),
        Bug("fired_too_early", "autograd.py",
            "        for v in reversed(topo_sort(self)):",
            "        for v in topo_sort(self):",
            note="backward walks the order forwards"),
        Bug("fired_outside_graph", "autograd.py",
            "def topo_sort(v, visited=None, order=None):",
            "def topo_sort(v, visited=set(), order=[]):",
            note="topo_sort's defaults are one shared set and list"),
    ),
)
