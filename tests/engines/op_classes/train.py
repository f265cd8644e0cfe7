from graph import Var, Const, tanh
from autodiff import backprop

# one hidden unit h, reused twice in the prediction
w1, w2, b = Var(0.5), Var(-0.3), Var(0.1)
v = Var(0.8)
params = [w1, w2, b, v]

data = [((1.0, 2.0), 0.6), ((-1.5, 0.5), -0.2)]
learning_rate = 0.2

for epoch in range(4):
    loss = Const(0.0)
    for (x1, x2), target in data:
        h = tanh(w1 * x1 + w2 * x2 + b)
        pred = v * h + 0.5 * h * h
        loss = loss + (pred - target) ** 2

    for p in params:
        p.zero_grad()
    backprop(loss)

    for p in params:
        p.value -= learning_rate * p.grad
    print("epoch", epoch, "loss", round(loss.value, 6))

print("grads", [round(p.grad, 6) for p in params])
print("values", [round(p.value, 6) for p in params])
