# a 2-2-1 network trained for a few steps on two points
from engine import Value

# weights of the hidden layer: one list per neuron, plus a bias each
w1 = [[Value(0.5), Value(-0.3)], [Value(0.2), Value(0.4)]]
b1 = [Value(0.1), Value(-0.1)]
# output neuron
w2, b2 = [Value(0.7), Value(-0.6)], Value(0.05)
params = [w for row in w1 for w in row] + b1 + w2 + [b2]

xs = [[1.0, -2.0], [0.5, 1.5]]
ys = [1.0, -1.0]


def forward(x):
    h = [sum((wi * xi for wi, xi in zip(row, x)), b).tanh() for row, b in zip(w1, b1)]
    out = sum((wi * hi for wi, hi in zip(w2, h)), b2)
    return out


lr = 0.1
for step in range(3):
    preds = [forward(x) for x in xs]
    errs = [p - y for p, y in zip(preds, ys)]
    loss = sum(e * e for e in errs)  # squared error: e is used twice
    loss = loss + 0.01 * sum(w**2 for w in w2)  # a little weight decay on the output layer

    for p in params:
        p.grad = 0.0
    loss.backward()

    for p in params:
        p.data -= lr * p.grad
    print(f"step {step} loss {loss.data:.6f}")

print("grads", [round(p.grad, 6) for p in params])
print("values", [round(p.data, 6) for p in params])
