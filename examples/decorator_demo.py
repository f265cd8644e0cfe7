"""@traced on a function: the same report and files as trace-backward, for one call.

    python examples/decorator_demo.py [OUT]   # writes OUT, by default outputs/decorator_demo/
"""

import sys

from autodiff_trace import Value, traced

OUT = sys.argv[1] if len(sys.argv) > 1 else "outputs/decorator_demo"


@traced(out=OUT)
def neuron(x1: float, x2: float) -> Value:
    """One tanh neuron: out = tanh(w1 x1 + w2 x2 + b); names read neuron.w1, ..."""
    w1 = Value(-3.0)
    w2 = Value(1.0)
    b = Value(6.8813735870195432)
    n = w1 * x1 + w2 * x2 + b
    out = n.tanh()
    out.backward()
    return out


out = neuron(2.0, 0.0)
print(f"out = {out.data:.4f}")
