"""Fit a one-neuron tanh model to three points with plain SGD."""
from scalar import Scalar

w1, w2, b = Scalar(0.5, name="w1"), Scalar(-0.3, name="w2"), Scalar(0.1, name="b")
parameters = [w1, w2, b]

points = [(0.5, 1.0), (-1.0, 0.5), (1.5, -0.5)]
labels = [0.8, -0.4, 0.3]
rate = 0.5

for epoch in range(3):
    total = Scalar(0.0)
    for (x1, x2), y in zip(points, labels):
        out = (w1 * x1 + w2 * x2 + b).tanh()
        err = out - y
        total = total + err * err
    loss = total / len(points)

    for p in parameters:
        p.derivative = None
    loss.backward()

    for p in parameters:
        p.data -= rate * p.derivative
    print(f"epoch {epoch}: loss={loss.data:.6f}")

print("grads", [round(p.derivative, 6) for p in parameters])
print("values", [round(p.data, 6) for p in parameters])
