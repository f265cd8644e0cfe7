# Two data points, one tanh unit, trained on an integer tape.
from engine import backward, new_var

tape = []
w1, w2, b = new_var(tape, 0.5), new_var(tape, -0.3), new_var(tape, 0.1)
n_params = len(tape)          # the parameters live at the start of the tape
data = [(0.5, 0.8), (-1.2, -0.4)]
lr = 0.1

for step in range(3):
    del tape[n_params:]       # throw away last step's entries
    for i in range(n_params):
        tape[i].adjoint = 0.0

    loss = None
    for x, target in data:
        h = (w1 * x + b).tanh()
        y = w2 * h + h * h
        err = (y - target) ** 2
        loss = err if loss is None else loss + err

    backward(tape, loss.index)
    for i in range(n_params):
        tape[i].value -= lr * tape[i].adjoint
    print(f"step {step} loss {loss.value:.6f}")

print("params", [round(tape[i].value, 6) for i in range(n_params)])
print("grads", [round(tape[i].adjoint, 6) for i in range(n_params)])
