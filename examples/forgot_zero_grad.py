"""A small MLP on our engine trained twice: once forgetting zero_grad, once not.

Without zeroing, every step's gradient is added to the previous steps', so the
updates grow and the loss stops falling. trace-backward names this once, at the
``loss.backward()`` line where the zeroing is missing: the 17 parameters that held
gradients from the previous pass when passes 2 and 3 began. The second run zeroes
before each backward call and gets no finding, with or without --check-grads.

    trace-backward examples/forgot_zero_grad.py
"""

import random

from autodiff_trace import Value, zero_grad


def make_model(seed: int) -> list:
    """A 2-4-1 tanh network as a flat list of weights and biases."""
    rng = random.Random(seed)
    return [Value(rng.uniform(-1, 1), name=f"w{i}") for i in range(17)]


def predict(params: list, x: tuple) -> Value:
    w1, b1, w2, b2 = params[:8], params[8:12], params[12:16], params[16]
    hidden = [(w1[2 * j] * x[0] + w1[2 * j + 1] * x[1] + b1[j]).tanh() for j in range(4)]
    return sum((w * h for w, h in zip(w2, hidden)), b2)


def train(zero_each_step: bool, steps: int = 3) -> list:
    params = make_model(seed=0)
    data = [((0.5, -1.0), 1.0), ((-1.5, 0.3), -1.0), ((1.0, 1.0), 1.0)]
    losses = []
    for _ in range(steps):
        loss = sum(((predict(params, x) - y) ** 2 for x, y in data), Value(0.0))
        if zero_each_step:
            zero_grad(params)
        loss.backward()
        for p in params:
            p.data -= 0.1 * p.grad
        losses.append(round(loss.data, 4))
    return losses


print("forgetting zero_grad:", train(zero_each_step=False))
print("with zero_grad:      ", train(zero_each_step=True))
