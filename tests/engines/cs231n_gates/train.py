# y = w2*h + h*h with h = tanh(w1*x + b), squared error, wired up gate by gate
from gates import AddGate, MultiplyGate, SubtractGate, TanhGate
from units import Unit

w1, w2, b = Unit(0.5), Unit(-0.3), Unit(0.1)
data = [(0.5, 0.8), (-1.2, -0.4)]
lr = 0.1


def sample_circuit(x, target):
    """Forward one example; returns its loss unit and the gates in the order they ran."""
    mul_wx, add_b, tanh_h = MultiplyGate(), AddGate(), TanhGate()
    mul_w2h, mul_hh, add_y = MultiplyGate(), MultiplyGate(), AddGate()
    sub_err, mul_sq = SubtractGate(), MultiplyGate()

    s = add_b.forward(mul_wx.forward(w1, Unit(x)), b)
    h = tanh_h.forward(s)
    y = add_y.forward(mul_w2h.forward(w2, h), mul_hh.forward(h, h))
    err = sub_err.forward(y, Unit(target))
    loss = mul_sq.forward(err, err)
    return loss, [mul_wx, add_b, tanh_h, mul_w2h, mul_hh, add_y, sub_err, mul_sq]


def backprop(gate_list):
    for gate in reversed(gate_list):
        gate.backward()


for step in range(3):
    # forward
    loss_a, gates_a = sample_circuit(*data[0])
    loss_b, gates_b = sample_circuit(*data[1])
    total = AddGate()
    loss = total.forward(loss_a, loss_b)
    gates = gates_a + gates_b + [total]

    # backward
    for u in (w1, w2, b):
        u.grad = 0.0
    loss.grad = 1.0
    backprop(gates)

    # parameter update
    for u in (w1, w2, b):
        u.value += -lr * u.grad
    print(f"step {step} loss {loss.value:.6f}")

print("params", [round(u.value, 6) for u in (w1, w2, b)])
print("grads", [round(u.grad, 6) for u in (w1, w2, b)])
