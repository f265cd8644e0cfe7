"""What tracing PyTorch costs, against ``torch.autograd.detect_anomaly()``, on two models.

Two models, each timed as a training step, a step whose gradient turns NaN, and a hunt:

- ``mlp512``: an MLP of width 512 (batch 64), three linear layers: a few large
  matmuls per step, where anomaly mode's per-op bookkeeping is small beside the maths.
- ``small-ops``: a 32-wide residual network (batch 16) of 8 blocks, each a linear
  layer, ``layer_norm``, ``gelu``, a scale and a residual add: many small ops per
  step, where anomaly mode's stack capture at every op and its check after every
  backward node cost the most.

Each step runs untraced, traced (the forward's nodes, the firing order, each node's
received-gradient norm, every parameter's gradient before, added and after, and the
findings) and under ``detect_anomaly()``. The NaN step takes ``sqrt`` of a value that
is 0, either in the loss (its NaN is the first thing the backward computes) or at the
first layer's output (the NaN is born near the end of the backward): tracing names the
node that made the first non-finite gradient and lets the pass finish, as the script
does; anomaly mode raises at the first NaN (the benchmark catches it) and skips the rest
of that pass, so with the NaN in the loss its step costs less than an untraced one. A
user hunting a NaN that shows up only now and then keeps anomaly mode on for every
training step until then: a hunt of ``--hunt`` steps is that many training steps, the
last with the NaN in the loss (its time is per hunt), and the last lines give, from the
medians, the shortest such run for which tracing costs less than anomaly mode.

Rounds alternate between the variants, so a busy machine slows them alike; every
ratio is of medians taken in the same run, with the spread (min-max of per-round
ratios) beside it:

    python benchmarks/bench_torch.py [--models mlp512,small-ops] [--rounds 9] [--steps 20] [--hunt 10]
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


class Block(nn.Module):
    """A residual block of small ops: h + 0.5 * gelu(layer_norm(linear(h)))."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width)

    def forward(self, h):
        return h + 0.5 * nn.functional.gelu(self.norm(self.linear(h)))


MODELS = {  # name -> (model maker, batch, width)
    "mlp512": (lambda: nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                                     nn.Linear(512, 1)), 64, 512),
    "small-ops": (lambda: nn.Sequential(*[Block(32) for _ in range(8)], nn.Linear(32, 1)), 16, 32),
}


def make_step(model_name: str, nan: str = "", clean_before: int = 0):
    """One training step of a fresh model. With ``nan``, a ``sqrt`` of a value that is 0
    (an infinite derivative) joins the graph and the step makes no update: ``"loss"`` adds
    it to the loss, so its NaN is the first thing the backward computes; ``"first layer"``
    adds it to the first layer's output, so the NaN is born near the end of the backward.
    ``clean_before`` training steps come first, as in a run where the NaN shows up only
    after a while."""
    torch.manual_seed(0)
    make, batch, width = MODELS[model_name]
    model = make()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    x, y = torch.randn(batch, width), torch.randn(batch, 1)

    def one(bad: str):
        optimizer.zero_grad()
        if bad == "first layer":
            h = model[0](x)
            out = model[1:](h + torch.sqrt((h - h).pow(2).sum()))
        else:
            out = model(x)
        loss = nn.functional.mse_loss(out, y)
        if bad == "loss":
            loss = loss + torch.sqrt((out - out).pow(2).sum())
        try:
            loss.backward()
        except RuntimeError:  # detect_anomaly stops at the first NaN: that is its finding
            pass
        if not bad:
            optimizer.step()

    def step():
        for _ in range(clean_before):
            one("")
        one(nan)
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


NAN_AT = ("loss", "first layer")  # where the NaN step takes its sqrt of 0
VARIANTS = {"untraced": contextlib.nullcontext, "traced": traced, "detect_anomaly": anomaly}


def seconds(step, steps: int, context) -> float:
    with context():
        step()  # warm up (and, traced, meet the parameters)
        start = time.process_time()
        for _ in range(steps):
            step()
        return (time.process_time() - start) / steps


def compare(cases: dict, rounds: int) -> dict:
    """Per case (its step and how many times a round runs it) and variant: the median time
    per run of the step over alternating rounds (every case and variant takes its turn in
    each round), and the per-round ratios to untraced."""
    times = {(case, name): [] for case in cases for name in VARIANTS}
    for _ in range(rounds):
        for case, (step, repeats) in cases.items():
            for name, context in VARIANTS.items():
                times[case, name].append(seconds(step, repeats, context))
    results = {}
    for (case, name), ts in times.items():
        base = times[case, "untraced"]
        results[case, name] = (statistics.median(ts), statistics.median(base), [t / b for t, b in zip(ts, base)])
    return results


def show(results: dict) -> None:
    print(f"  {'':<33} {'variant':<15} {'ms/case':>8}   ratio   per round")
    for (case, name), (median, base, ratios) in results.items():
        print(f"  {case:<33} {name:<15} {median * 1e3:8.3f}   {median / base:5.2f}x  "
              f"{min(ratios):.2f}-{max(ratios):.2f}x")
    print("  traced against detect_anomaly (ratio of the medians):")
    for case in dict.fromkeys(case for case, _ in results):
        traced_time, anomaly_time = results[case, "traced"][0], results[case, "detect_anomaly"][0]
        verdict = "cheaper" if traced_time < anomaly_time else "dearer"
        print(f"  {case:<33} traced / anomaly = {traced_time / anomaly_time:5.2f}  ({verdict})")
    models = [case.rpartition(" training step")[0] for case in dict.fromkeys(c for c, _ in results)
              if case.endswith(" training step")]
    print("  a run whose last step turns NaN, of n steps: from how many steps tracing is cheaper "
          "(from the medians above)")
    for model in models:
        clean = {name: results[f"{model} training step", name][0] for name in ("traced", "detect_anomaly")}
        for where in NAN_AT:
            last = {name: results[f"{model} NaN at the {where}", name][0] for name in ("traced", "detect_anomaly")}
            steps = next((n for n in range(1, 1001) if (n - 1) * clean["traced"] + last["traced"]
                          < (n - 1) * clean["detect_anomaly"] + last["detect_anomaly"]), None)
            when = "never within 1,000 steps" if steps is None else f"n >= {steps}"
            print(f"  {model:<12} NaN at the {where:<12} {when}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated: " + ", ".join(MODELS))
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--hunt", type=int, default=10, help="steps of the NaN hunt: clean ones, then the NaN")
    args = parser.parse_args()
    names = [name.strip() for name in args.models.split(",") if name.strip()]
    unknown = [name for name in names if name not in MODELS]
    if unknown:
        parser.error(f"unknown model {', '.join(unknown)}: choose from {', '.join(MODELS)}")
    torch.set_num_threads(1)  # steadier numbers on a shared machine
    print(f"torch {torch.__version__}, {args.rounds} rounds of {args.steps} steps, 1 thread, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    cases = {}
    for name in names:
        cases[f"{name} training step"] = (make_step(name), args.steps)
        for where in NAN_AT:
            cases[f"{name} NaN at the {where}"] = (make_step(name, nan=where), args.steps)
        if args.hunt > 1:  # as many steps in all as the other cases
            cases[f"{name} hunt of {args.hunt}"] = (make_step(name, nan="loss", clean_before=args.hunt - 1),
                                                    max(1, args.steps // args.hunt))
    show(compare(cases, args.rounds))
    print(f"  load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
