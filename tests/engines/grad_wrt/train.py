from engine import Node, backward, tanh

w1, w2, b = Node(0.5), Node(-0.3), Node(0.1)
params = [w1, w2, b]
data = [(0.5, 0.8), (-1.2, -0.4)]
lr = 0.1

for step in range(3):
    loss = 0.0
    for x, target in data:
        h = tanh(w1 * x + b)
        y = w2 * h + h * h
        loss = loss + (y - target) ** 2

    for p in params:
        p.grad = 0
    backward(loss)
    for p in params:
        p.value -= lr * p.grad
    print(f"step {step} loss {loss.value:.6f}")

print("params", [round(p.value, 6) for p in params])
print("grads", [round(p.grad, 6) for p in params])
