import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from corpus import Bug, Design

DESIGN = Design(
    name="notebook_export",
    description="A Jupyter notebook exported as a script (# In[n]: cells, markdown as comments) that defines a micrograd-like Value with data, grad, _prev and a _backward closure per op, checks it on a small example and then trains a tiny model in later cells.",
    backward_passes=4,
    script="train.py",
    bugs=(
        Bug("overwritten_grad", "train.py",
            "            other.grad += out.grad",
            "            other.grad = out.grad",
            note="__add__'s closure overwrites other.grad"),
        Bug("wrong_derivative", "train.py",
            "            self.grad += other.data * out.grad",
            "            self.grad += self.data * out.grad",
            note="__mul__'s closure uses self.data for self"),
        Bug("wrong_derivative", "train.py",
            "            self.grad += (1 - t**2) * out.grad",
            "            self.grad += (1 - x**2) * out.grad",
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
        Bug("fired_too_early", "train.py",
            "        for node in reversed(topo):",
            "        for node in topo:",
            note="backward walks the topological order forwards"),
    ),
)
