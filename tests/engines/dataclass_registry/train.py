from nodes import Node, reverse
from ops import tanh

w1, w2, b = Node(0.5), Node(0.25), Node(-0.1)
params = [w1, w2, b]
samples = [(1.2, 0.7), (-0.8, -0.3), (0.1, 0.2)]
lr = 0.3

for epoch in range(3):
    loss = Node(0.0)
    for x, y in samples:
        h = tanh(w1 * x + b)
        pred = w2 * h + 0.2 * h * h
        loss = loss + (pred - y) ** 2

    for p in params:
        p.grad = 0.0
    reverse(loss)

    for p in params:
        p.value -= lr * p.grad
    print(f"epoch {epoch} loss {loss.value:.6f}")

print("grads", [round(p.grad, 6) for p in params])
