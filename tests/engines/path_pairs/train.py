from engine import Node, tanh, gradients

w1, w2, b = Node(0.5), Node(-0.3), Node(0.1)
u = Node(0.7)
params = [w1, w2, b, u]

inputs = [(2.0, 1.0), (-1.0, 0.5)]
targets = [0.4, -0.6]
step_size = 0.1

for it in range(3):
    loss = 0.0
    for (x1, x2), t in zip(inputs, targets):
        h = tanh(w1 * x1 + w2 * x2 + b)
        out = u * h - 0.3 * h * h
        loss = loss + (out - t) ** 2

    grads = gradients(loss)
    for p in params:
        p.grad = grads[p]
    for p in params:
        p.value = p.value - step_size * p.grad
    print("iter", it, "loss", round(loss.value, 6))

print("grads", [round(p.grad, 6) for p in params])
print("values", [round(p.value, 6) for p in params])
