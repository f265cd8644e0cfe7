import ops  # noqa: F401  (registers the operations on Tensor)
from tensor import Tensor


class SGD:
    def __init__(self, params, lr):
        self.params, self.lr = params, lr

    def zero_grad(self):
        for t in self.params:
            t.zero_grad()

    def step(self):
        for t in self.params:
            t.data -= self.lr * t.grad


w1 = Tensor(0.6)
w2 = Tensor(-0.4)
b = Tensor(0.05)
optim = SGD([w1, w2, b], lr=0.1)

X = [(0.5, 1.0), (-1.0, 0.3), (0.8, -0.6)]
Y = [0.2, -0.5, 0.4]

for i in range(3):
    loss = Tensor(0.0, requires_grad=False)
    for (x1, x2), y in zip(X, Y):
        h = (w1 * x1 + w2 * x2 + b).tanh()
        out = h * w2 + h.square()
        loss = loss + (out - y).square()
    optim.zero_grad()
    loss.backward()
    optim.step()
    print("step %d loss %.6f" % (i, loss.data))

print("grads", [round(t.grad, 6) for t in optim.params])
