import gc

from engine import LIVE, Tensor0

w1, w2, b = Tensor0(0.9), Tensor0(-0.5), Tensor0(0.3)
params = [w1, w2, b]
samples = [(0.4, 0.6), (-1.2, -0.8), (0.7, 0.1)]
lr = 0.1

for step in range(3):
    loss = 0.0
    for x, y in samples:
        h = (w1 * x + b).tanh()
        loss = loss + (w2 * h + h * h - y) ** 2
    for p in params:
        p.grad = 0.0
    loss.backward()
    for p in params:
        p.data -= lr * p.grad
    print(f"step {step} loss {loss.data:.6f}")
    del loss, h
    gc.collect()
    print("  nodes still alive after the step:", len(LIVE))

print("grads", [round(p.grad, 6) for p in params])
