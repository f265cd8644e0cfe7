"""What tracing PyTorch costs: a 512-wide MLP training step, and finding a NaN's origin.

1. One SGD step of an MLP (width 512, batch 64) untraced, and traced: the forward's
   nodes, the firing order, each node's received-gradient norm and every
   parameter's gradient before, added and after; beside them the same step under
   ``torch.autograd.detect_anomaly()``, which is what hunting a NaN that shows up
   only now and then costs on every step until it does.
2. The same step with ``sqrt`` of a value that reaches 0 in the loss: tracing (which
   names the node that made the first non-finite gradient) against
   ``detect_anomaly()``, each as a ratio to the untraced step. Anomaly mode raises at
   the first NaN, so it skips the rest of that pass; the trace lets the pass finish,
   as the script does.

Rounds alternate between the variants, so a busy machine slows them alike; the
ratios are of medians, with the spread (min-max of per-round ratios) beside them:

    python benchmarks/bench_torch.py [--width 512] [--rounds 9] [--steps 20]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
import warnings

import torch
from torch import nn

from autodiff_trace import trace
from autodiff_trace.adapters.torch import watch_torch


def make_step(width: int, nan: bool):
    """One training step of a fresh MLP; with ``nan``, its loss takes sqrt at 0."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                          nn.Linear(width, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    x, y = torch.randn(64, width), torch.randn(64, 1)

    def step():
        optimizer.zero_grad()
        out = model(x)
        loss = nn.functional.mse_loss(out, y)
        if nan:
            loss = loss + torch.sqrt((out - out).pow(2).sum())  # sqrt(0): an infinite derivative
        try:
            loss.backward()
        except RuntimeError:  # detect_anomaly stops at the first NaN: that is its finding
            pass
        if not nan:
            optimizer.step()
    return step


@contextlib.contextmanager
def traced():
    """A tracer with no sinks, as a script under trace-backward gets (minus the drawing)."""
    with trace(record=False) as tracer:
        watch = watch_torch()
        try:
            yield tracer
        finally:
            watch.stop()


@contextlib.contextmanager
def anomaly():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.autograd.detect_anomaly(check_nan=True):
            yield None


def seconds(step, steps: int, context) -> float:
    with context():
        step()  # warm up (and, traced, meet the parameters)
        start = time.process_time()
        for _ in range(steps):
            step()
        return (time.process_time() - start) / steps


def compare(step, variants: dict, rounds: int, steps: int) -> dict:
    """Per variant: the median time per step over alternating rounds, and per-round ratios
    to the first variant."""
    times = {name: [] for name in variants}
    for _ in range(rounds):
        for name, context in variants.items():
            times[name].append(seconds(step, steps, context))
    base = times[next(iter(variants))]
    return {name: (statistics.median(ts), [t / b for t, b in zip(ts, base)]) for name, ts in times.items()}


def show(title: str, results: dict) -> None:
    print(title)
    base = next(iter(results.values()))[0]
    for name, (median, ratios) in results.items():
        print(f"  {name:<16} {median * 1e3:8.3f} ms/step   {median / base:5.2f}x   "
              f"(per round {min(ratios):.2f}-{max(ratios):.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)  # steadier numbers on a shared machine
    print(f"torch {torch.__version__}, width {args.width}, batch 64, {args.rounds} rounds of "
          f"{args.steps} steps, 1 thread, load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs")
    step = make_step(args.width, nan=False)
    show("training step", compare(step, {"untraced": contextlib.nullcontext, "traced": traced,
                                         "detect_anomaly": anomaly}, args.rounds, args.steps))
    step = make_step(args.width, nan=True)
    show("non-finite gradient: finding its origin",
         compare(step, {"untraced": contextlib.nullcontext, "traced": traced, "detect_anomaly": anomaly},
                 args.rounds, args.steps))


if __name__ == "__main__":
    main()
