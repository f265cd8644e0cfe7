"""Two training steps of a small micrograd MLP (micrograd 0.1.0, unmodified)."""

import random

from micrograd.nn import MLP

random.seed(1)
model = MLP(2, [4, 4, 1])
xs = [[2.0, 3.0], [-1.0, -2.0], [3.0, -1.0], [-2.0, 2.5]]
ys = [1.0, -1.0, -1.0, 1.0]

for step in range(2):
    scores = [model(x) for x in xs]
    loss = sum((1 + -y * score).relu() for y, score in zip(ys, scores)) * (1.0 / len(ys))
    model.zero_grad()
    loss.backward()
    for p in model.parameters():
        p.data -= 0.05 * p.grad
    print(f"step {step}: loss {loss.data:.4f}")
