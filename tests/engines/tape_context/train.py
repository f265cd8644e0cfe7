from tape import Tape, Variable, tanh

w1, w2, b = Variable(0.5), Variable(-0.3), Variable(0.1)
data = [(0.5, 0.8), (-1.2, -0.4)]
lr = 0.1

for step in range(3):
    with Tape() as tape:
        loss = 0.0
        for x, target in data:
            h = tanh(w1 * x + b)
            y = w2 * h + h * h
            loss = loss + (y - target) ** 2

    grads = tape.gradient(loss, [w1, w2, b])
    for var, g in zip([w1, w2, b], grads):
        var.value -= lr * g
    print(f"step {step} loss {loss.value:.6f}")

print("params", [round(v.value, 6) for v in (w1, w2, b)])
print("grads", [round(g, 6) for g in grads])
