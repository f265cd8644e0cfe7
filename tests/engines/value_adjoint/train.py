from engine import Node, backward

w1, w2, b = Node(0.5), Node(-0.3), Node(0.1)
params = (w1, w2, b)
data = [(0.5, 0.8), (-1.2, -0.4)]
lr = 0.1

for step in range(3):
    for p in params:
        p.adjoint = 0.0

    loss = Node(0.0)
    for x, target in data:
        h = (w1 * x + b).tanh()
        y = w2 * h + h * h
        loss = loss + (y - target).square()

    backward(loss)
    for p in params:
        p.value -= lr * p.adjoint
    print('step %d loss %.6f' % (step, loss.value))

print('params', [round(p.value, 6) for p in params])
print('grads', [round(p.adjoint, 6) for p in params])
