# fit one tanh unit to three points with plain gradient descent
from scalar import Scalar

w1, w2, b = Scalar(0.4, label="w1"), Scalar(-0.7, label="w2"), Scalar(0.2, label="b")
params = [w1, w2, b]
points = [((1.0, -0.5), 0.3), ((0.2, 1.5), -0.6), ((-1.1, 0.4), 0.9)]
lr = 0.05

for it in range(3):
    loss = Scalar(0.0)
    for (x1, x2), y in points:
        h = (w1 * x1 + w2 * x2 + b).tanh()
        pred = h * w2 + h * h  # w2 and h are each used twice
        loss = loss + (pred - y) ** 2

    for p in params:
        p.grad = 0.0
    loss.backward()

    for p in params:
        p.val -= lr * p.grad
    print(f"iter {it} loss {loss.val:.6f}")

print("values", [round(p.val, 6) for p in params])
print("grads", [round(p.grad, 6) for p in params])
