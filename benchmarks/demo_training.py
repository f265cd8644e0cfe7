"""micrograd's demo training: MLP(2, [16, 16, 1]) on 100 moons points, a few SGD steps.

The script a learner would run (``python benchmarks/demo_training.py``); the training
benchmark (benchmarks/bench_training.py) runs it plain and under ``trace-backward``.

    python benchmarks/demo_training.py [--steps 5] [--engine micrograd|ours]

``--engine micrograd`` (the default) needs ``pip install micrograd==0.1.0``; ``ours``
uses ``autodiff_trace.Value``.
"""

from __future__ import annotations

import argparse
import math
import random


def moons(n: int = 100, seed: int = 1) -> tuple:
    """Two interleaved half circles, labels -1 / +1 (sklearn's make_moons, without sklearn)."""
    rng = random.Random(seed)
    xs, ys = [], []
    for i in range(n):
        t = math.pi * (i % (n // 2)) / (n // 2)
        if i < n // 2:
            x, y = (math.cos(t), math.sin(t)), -1
        else:
            x, y = (1 - math.cos(t), 0.5 - math.sin(t)), 1
        xs.append((x[0] + rng.gauss(0, 0.1), x[1] + rng.gauss(0, 0.1)))
        ys.append(y)
    return xs, ys


class Neuron:
    def __init__(self, value_cls, nin: int, rng: random.Random, nonlin: bool) -> None:
        self.w = [value_cls(rng.uniform(-1, 1)) for _ in range(nin)]
        self.b = value_cls(0.0)
        self.nonlin = nonlin

    def __call__(self, x):
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return act.relu() if self.nonlin else act


class MLP:
    """micrograd's nn.MLP, for any Value class with ``relu``."""

    def __init__(self, value_cls, nin: int, nouts: list, seed: int = 0) -> None:
        rng = random.Random(seed)
        sizes = [nin] + nouts
        self.layers = [[Neuron(value_cls, sizes[i], rng, i != len(nouts) - 1) for _ in range(sizes[i + 1])]
                       for i in range(len(nouts))]

    def __call__(self, x):
        for layer in self.layers:
            x = [neuron(x) for neuron in layer]
        return x[0]

    def parameters(self) -> list:
        return [p for layer in self.layers for n in layer for p in (*n.w, n.b)]


def train(value_cls, steps: int, forget_zero_grad_at: int = 0) -> list:
    """micrograd demo's loop: hinge loss plus L2, zero_grad, backward, SGD step; from step
    ``forget_zero_grad_at`` on (if not 0) the grads are not zeroed: a bug to be found."""
    xs, ys = moons()
    model = MLP(value_cls, 2, [16, 16, 1])
    losses = []
    for k in range(steps):
        inputs = [[value_cls(a) for a in row] for row in xs]
        scores = [model(x) for x in inputs]
        hinge = [(1 + -yi * si).relu() for yi, si in zip(ys, scores)]
        data_loss = sum(hinge) * (1.0 / len(hinge))
        reg_loss = 1e-4 * sum(p * p for p in model.parameters())
        total = data_loss + reg_loss
        if not forget_zero_grad_at or k + 1 < forget_zero_grad_at:
            for p in model.parameters():
                p.grad = 0.0
        total.backward()
        learning_rate = 1.0 - 0.9 * k / 100
        for p in model.parameters():
            p.data -= learning_rate * p.grad
        losses.append(total.data)
        print(f"step {k}: loss {total.data:.6f}")
    return losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--engine", choices=("micrograd", "ours"), default="micrograd")
    parser.add_argument("--forget-zero-grad-at", type=int, default=0, metavar="STEP",
                        help="stop zeroing the grads from this step (1 is the first) on")
    args = parser.parse_args()
    if args.engine == "ours":
        from autodiff_trace import Value
    else:
        from micrograd.engine import Value
    train(Value, args.steps, args.forget_zero_grad_at)


if __name__ == "__main__":
    main()
