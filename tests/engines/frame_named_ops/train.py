from engine import Value, show

w1, w2, b = Value(0.5), Value(-0.4), Value(0.2)
params = [w1, w2, b]
data = [(0.8, 0.3), (-0.6, -0.5), (1.4, 0.6)]
lr = 0.1

for step in range(3):
    loss = 0
    for x, y in data:
        h = (w1 * x + b).tanh()
        pred = w2 * h + h * h
        loss = loss + (pred - y) ** 2
    if step == 0:
        print("one term of the loss:", show((pred - y) ** 2))
    for p in params:
        p.grad = 0.0
    loss.backward()
    for p in params:
        p.data -= lr * p.grad
    print(f"step {step} loss {loss.data:.6f}")

print("grads", [round(p.grad, 6) for p in params])
