from minijax import tanh, value_and_grad

xs = [0.4, -1.1, 0.9, 1.6]
ys = [0.3, -0.7, 0.5, 0.8]


def loss_fn(params):
    w, u, c = params
    total = 0.0
    for x, y in zip(xs, ys):
        h = tanh(w * x + c)
        total = total + (u * h + h * h - y) ** 2  # h is used twice
    return total


params = [0.2, 0.9, -0.1]
lr = 0.1
for step in range(3):
    loss, grads = value_and_grad(loss_fn)(params)
    params = [p - lr * g for p, g in zip(params, grads)]
    print(f"step {step} loss {loss:.6f}")

print("params", [round(p, 6) for p in params])
print("grads", [round(g, 6) for g in grads])
