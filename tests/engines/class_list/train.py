from engine import Variable, diff

w1, w2, b = Variable(0.5), Variable(-0.3), Variable(0.1)
params = [w1, w2, b]
data = [(0.5, 0.8), (-1.2, -0.4)]
lr = 0.1

for step in range(3):
    # start a fresh graph: only the parameters stay, and they forget their old consumers
    Variable.all_vars = list(params)
    for p in params:
        p.adjoints = []

    loss = 0
    for x, target in data:
        h = (w1 * x + b).tanh()
        y = w2 * h + h * h
        loss = loss + (y - target) ** 2

    diff(loss)
    for p in params:
        p.value -= lr * p.derivative
    print(f"step {step} loss {loss.value:.6f}")

print("params", [round(p.value, 6) for p in params])
print("grads", [round(p.derivative, 6) for p in params])
