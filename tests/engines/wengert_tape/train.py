# Fit a one-hidden-unit model with the Wengert-list engine.
from engine import TAPE, Var, grad, tanh

w1, w2, b = Var(0.5), Var(-0.3), Var(0.1)
params = [w1, w2, b]
data = [(0.5, 0.8), (-1.2, -0.4)]
lr = 0.1

for step in range(3):
    TAPE.clear()                 # new graph, new tape
    for p in params:
        TAPE.adjoint[p.id] = 0.0  # forget last step's gradients

    loss = 0.0
    for x, target in data:
        h = tanh(w1 * x + b)
        y = w2 * h + h * h
        loss = loss + (y - target) ** 2

    g = grad(TAPE, loss)
    for p in params:
        p.value -= lr * g[p.id]
    print(f"step {step} loss {loss.value:.6f}")

print("params", [round(p.value, 6) for p in params])
print("grads", [round(TAPE.adjoint[p.id], 6) for p in params])
