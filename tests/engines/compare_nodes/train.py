from value import Value

w1, w2, b = Value(0.8), Value(-0.6), Value(0.1)
params = [w1, w2, b]
data = [(1.5, 0.9), (-0.7, 0.2), (0.4, 0.5), (2.0, 1.1)]
lr = 0.02

for step in range(3):
    loss = Value(0.0)
    for x, y in data:
        h = (w1 * x + b).relu()
        pred = h * h * w2 + h  # h is used three times
        loss = loss + (pred - y) ** 2
    for p in params:
        p.grad = 0.0
    loss.backward()
    for p in params:
        p.data -= lr * p.grad
    print(f"step {step} loss {loss.data:.6f}, the loss is {loss}, {Value.made} values made so far")

print("grads", [round(p.grad, 6) for p in params])
