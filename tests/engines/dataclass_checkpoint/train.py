# train, keeping a deep copy of the parameters at the best loss seen
import copy

from value import Value

w1, w2, b = Value(-0.4), Value(0.8), Value(0.2)
params = [w1, w2, b]
data = [(0.6, 0.1), (-0.9, -0.5), (1.8, 0.6), (0.0, 0.2)]
lr = 0.15

best_loss, best = None, None
for epoch in range(4):
    loss = Value(0.0)
    for x, y in data:
        h = (w1 * x + b).tanh()
        pred = w2 * h + h * h
        loss = loss + (pred - y) ** 2
    for p in params:
        p.grad = 0.0
    loss.backward()
    if best_loss is None or loss.value < best_loss:
        best_loss, best = loss.value, copy.deepcopy(params)
    for p in params:
        p.value -= lr * p.grad
    print(f"epoch {epoch} loss {loss.value:.6f}")

print("best", best_loss, best)
print("unchanged since the best epoch:", best == params)
print("grads", [round(p.grad, 6) for p in params])
