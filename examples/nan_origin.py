"""A NaN born deep inside a graph, and where it came from.

sqrt(u) at u = 0 has an infinite derivative; multiplied by a zero upstream
gradient it becomes NaN, and every gradient below it turns NaN too.
trace-backward names the first node whose gradient went bad and the op behind it.

    trace-backward examples/nan_origin.py
"""

from autodiff_trace import Value

a = Value(3.0)
b = Value(3.0)
u = a - b            # exactly 0
r = u.sqrt()         # value 0, local derivative 1 / (2 sqrt(0)) = inf
gate = r * 0.0       # upstream gradient 0 reaches r ...
loss = gate + a * b  # ... so r passes on 0 * inf = NaN
loss.backward()
print("loss", loss.data, "a.grad", a.grad, "b.grad", b.grad)
