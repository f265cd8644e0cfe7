# a one-unit recurrent net unrolled over a long sequence: the graph is deep, and
# build_topo recurses once per level (the sequence length is what the default limit allows)
import math

from micro import Value

w, u, b = Value(0.5, label='w'), Value(0.8, label='u'), Value(0.1, label='b')
params = [w, u, b]
T = 240
xs = [math.sin(0.3 * t) for t in range(T)]
target = 0.25

for step in range(2):
    h = Value(0.0)
    for x in xs:
        h = (w * h + u * x + b).tanh()
    loss = (h - target) ** 2
    for p in params:
        p.grad = 0.0
    loss.backward()
    for p in params:
        p.data -= 0.5 * p.grad
    print(f"step {step} loss {loss.data:.8f}")

print("grads", [round(p.grad, 6) for p in params])
