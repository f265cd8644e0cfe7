from engine import Var, tanh

w1, w2, b = Var(0.5), Var(-0.3), Var(0.1)
v = Var(1.2)
params = [w1, w2, b, v]

samples = [(1.0, 0.5, 0.9), (-0.5, 2.0, -0.3)]
lr = 0.1

for step in range(3):
    for p in params:
        p.zero_grad()

    loss = Var(0.0)
    for x1, x2, y in samples:
        h = tanh(w1 * x1 + w2 * x2 + b)
        pred = v * h + h ** 2  # h feeds two terms
        loss = loss + (pred - y) ** 2

    loss.grad_value = 1.0  # d loss / d loss
    grads = [p.grad() for p in params]

    for p, g in zip(params, grads):
        p.value -= lr * g
    print("step", step, "loss", round(loss.value, 6))

print("grads", [round(g, 6) for g in grads])
print("values", [round(p.value, 6) for p in params])
