from autograd import Node, add, sub, mul, power, tanh, backward

w1, w2, b = Node(0.5), Node(-0.3), Node(0.1)
v = Node(0.8)
params = [w1, w2, b, v]

xs = [(1.0, 2.0), (-0.5, 1.0), (2.0, 0.0)]
ys = [0.3, -0.2, 0.6]
lr = 0.1

for step in range(3):
    loss = Node(0.0)
    for (x1, x2), y in zip(xs, ys):
        h = tanh(add(add(mul(w1, x1), mul(w2, x2)), b))
        pred = add(mul(v, h), mul(h, h))
        loss = add(loss, power(sub(pred, y), 2))

    for p in params:
        p.grad = 0
    backward(loss)

    for p in params:
        p.value -= lr * p.grad
    print("step", step, "loss", round(loss.value, 6))

print("grads", [round(p.grad, 6) for p in params])
print("values", [round(p.value, 6) for p in params])
