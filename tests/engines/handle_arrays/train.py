from flatgrad import Graph

g = Graph()
w1, w2, b = g.leaf(0.35), g.leaf(-0.45), g.leaf(0.05)
params = [w1, w2, b]
n_params = 3

data = [(1.1, 0.5), (-0.6, -0.2), (0.3, 0.4)]
lr = 0.2

for step in range(3):
    g.truncate(n_params)  # drop last step's graph
    loss = g.leaf(0.0)
    for x, y in data:
        h = (w1 * x + b).tanh()
        loss = loss + (w2 * h + h * h - y) ** 2
    for p in params:
        p.grad = 0.0
    g.backward(loss)
    for p in params:
        p.value -= lr * p.grad
    print(f"step {step} loss {loss.value:.6f} nodes {len(g.values)}")

print("grads", [round(p.grad, 6) for p in params])
