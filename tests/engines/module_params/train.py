from nn import SGD, Net

net = Net()
opt = SGD(net.parameters(), lr=0.1)
xs = [[1.0, 0.5], [-0.5, 1.5], [2.0, -1.0]]
ys = [0.4, -0.3, 0.8]

for epoch in range(3):
    loss = sum((net(x) - y) ** 2 for x, y in zip(xs, ys))
    opt.zero_grad()
    loss.backward()
    opt.step()
    print(f"epoch {epoch}: loss {loss.data:.6f}")

for p in opt.params:
    print(p.name, p)
print("grads", [round(p.grad, 6) for p in opt.params])
