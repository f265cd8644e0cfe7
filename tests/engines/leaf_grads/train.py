# mini-batch gradient descent: one backward() per example, the grads add up over the batch
from autograd import Variable, zero_grad

w1 = Variable(0.7, requires_grad=True)
w2 = Variable(-0.2, requires_grad=True)
b = Variable(0.3, requires_grad=True)
params = [w1, w2, b]

batches = [
    [((1.0, 0.5), 0.8), ((-0.5, 1.2), -0.1)],
    [((0.3, -1.0), 0.4), ((1.5, 0.2), 0.9)],
]
lr = 0.2

for step, batch in enumerate(batches):
    zero_grad(params)
    total = 0.0
    for (x1, x2), y in batch:
        h = (w1 * x1 + w2 * x2 + b).tanh()
        pred = w2 * h + h * h
        loss = (pred - y) ** 2
        loss.backward()
        total += loss.data
    for p in params:
        p.data -= lr * p.grad
    print(f"step {step} batch loss {total:.6f}")

print("values", [round(p.data, 6) for p in params])
print("grads", [round(p.grad, 6) for p in params])
