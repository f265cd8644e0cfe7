from functions import tanh
from var import Var

w1, w2, b = Var(0.5), Var(-0.3), Var(0.1)
params = [w1, w2, b]
data = [(0.5, 0.8), (-1.2, -0.4)]
lr = 0.1

for step in range(3):
    for p in params:
        p.der = 0.0

    loss = 0.0
    for x, target in data:
        h = tanh(w1 * x + b)
        y = w2 * h + h * h
        loss = loss + (y - target) ** 2
    loss.backprop()

    for p in params:
        p.val -= lr * p.der
    print(f"step {step} loss {loss.val:.6f}")

print("params", [round(p.val, 6) for p in params])
print("grads", [round(p.der, 6) for p in params])
