from nn import Node

w1, w2, b = Node(0.5), Node(-0.3), Node(0.1)
w3 = Node(0.6)
params = [w1, w2, b, w3]
data = [(1.0, 2.0, 1.0), (2.0, -1.0, -0.5)]
lr = 0.1

for epoch in range(3):
    loss = Node(0.0)
    for x1, x2, y in data:
        h = (w1 * x1 + w2 * x2 + b).tanh()
        yp = w3 * h + h * h
        loss = loss + (yp - y) ** 2

    for p in params:
        p.g = 0
    loss.backprop(1.0)

    for p in params:
        p.v -= lr * p.g
    print("epoch %d loss %.6f" % (epoch, loss.v))

print("grads", [round(p.g, 6) for p in params])
print("values", [round(p.v, 6) for p in params])
