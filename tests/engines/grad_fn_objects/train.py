from tinytorch import Scalar, SGD

w1, w2, b = Scalar(0.5, requires_grad=True), Scalar(-0.3, requires_grad=True), Scalar(0.1, requires_grad=True)
a, c = Scalar(0.9, requires_grad=True), Scalar(-0.4, requires_grad=True)
params = [w1, w2, b, a, c]
opt = SGD(params, lr=0.2)

X = [(1.0, -1.0), (0.5, 2.0), (-1.5, 0.3)]
Y = [0.5, -0.2, 0.1]

for step in range(3):
    loss = Scalar(0.0)
    for (x1, x2), y in zip(X, Y):
        h = (w1 * x1 + w2 * x2 + b).tanh()
        y_hat = a * h + c * h * h  # the hidden unit h is used three times
        loss = loss + (y_hat - y) ** 2
    loss = loss * (1.0 / len(X))

    opt.zero_grad()
    loss.backward()
    opt.step()
    print(f"step {step}: loss {loss.data:.6f}")

print("grads", [round(p.grad, 6) for p in params])
print("values", [round(p.data, 6) for p in params])
