from autodiff import Var

w1 = Var(0.3, name="w1")
w2 = Var(-0.5, name="w2")
b = Var(0.1, name="b")
params = [w1, w2, b]

inputs = [(0.9, -0.2), (-0.4, 0.7), (1.3, 0.5)]
targets = [0.5, -0.4, 0.2]
step_size = 0.1

for epoch in range(4):
    total = 0.0
    for (x1, x2), t in zip(inputs, targets):
        z = w1 * x1 + w2 * x2 + b
        a = z.tanh()
        out = a * w1 + 0.5 * a * a  # w1 feeds the output twice
        total = total + (out - t) ** 2

    for p in params:
        p.gradient = 0.0
    total.propagate()

    for p in params:
        p.value -= step_size * p.gradient
    print(f"epoch {epoch}: loss = {total.value:.6f}")

print("grads", [round(p.gradient, 6) for p in params])
