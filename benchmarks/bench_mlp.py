"""Forward + backward of micrograd's demo network, in autodiff_trace and in micrograd.

MLP(2, [16, 16, 1]) on 100 points with micrograd's hinge loss and L2 term (about
65,000 nodes). Prints ratios measured in this one run (the median, and the range over
the interleaved rounds), never absolute claims: once as scripts run, with the garbage
collector on (micrograd's closures make cycles, so the collector dominates its time), and
once with the collector off during each step, which leaves the engines' own cost:

    python benchmarks/bench_mlp.py [--repeat 7]

Needs ``pip install micrograd==0.1.0``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import math
import os
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path


def moons(n: int = 100, seed: int = 1) -> tuple:
    """Two interleaved half circles, labels -1 / +1 (sklearn's make_moons, without sklearn)."""
    rng = random.Random(seed)
    xs, ys = [], []
    for i in range(n):
        t = math.pi * (i % (n // 2)) / (n // 2)
        if i < n // 2:
            x = (math.cos(t), math.sin(t))
            ys.append(-1)
        else:
            x = (1 - math.cos(t), 0.5 - math.sin(t))
            ys.append(1)
        xs.append((x[0] + rng.gauss(0, 0.1), x[1] + rng.gauss(0, 0.1)))
    return xs, ys


class MLP:
    """micrograd's nn.MLP, written once for any Value class with ``relu``."""

    def __init__(self, value_cls, nin: int, nouts: list, seed: int = 0) -> None:
        rng = random.Random(seed)
        sizes = [nin] + nouts
        self.layers = []
        for i in range(len(nouts)):
            neurons = [([value_cls(rng.uniform(-1, 1)) for _ in range(sizes[i])], value_cls(0.0))
                       for _ in range(sizes[i + 1])]
            self.layers.append((neurons, i != len(nouts) - 1))

    def __call__(self, x: list):
        for neurons, nonlin in self.layers:
            out = []
            for w, b in neurons:
                act = sum((wi * xi for wi, xi in zip(w, x)), b)
                out.append(act.relu() if nonlin else act)
            x = out
        return x[0]

    def parameters(self) -> list:
        return [p for neurons, _ in self.layers for w, b in neurons for p in (*w, b)]


def loss(model: MLP, value_cls, xs: list, ys: list):
    """micrograd demo's loss: mean hinge loss plus alpha * sum(p * p)."""
    inputs = [[value_cls(a) for a in row] for row in xs]
    scores = [model(x) for x in inputs]
    losses = [(1 + -yi * si).relu() for yi, si in zip(ys, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = 1e-4 * sum(p * p for p in model.parameters())
    return data_loss + reg_loss


def step(value_cls, xs, ys, around=None):
    """Build the graph and run backward once; returns (forward s, backward s, loss)."""
    model = MLP(value_cls, 2, [16, 16, 1])
    t0 = time.perf_counter()
    total = loss(model, value_cls, xs, ys)
    t1 = time.perf_counter()
    total.backward()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, total


def interleaved_times(variants: dict, xs, ys, repeat: int, collector: bool = True) -> dict:
    """Forward and backward times of each variant per round, run in turns (A B C, B C A, ...)
    so that a busy moment of a shared machine, or the one before going first, slows every
    variant alike. With ``collector=False`` the garbage collector is off during each step:
    the engines' own cost."""
    times = {name: ([], []) for name in variants}
    names = list(variants)
    for turn in range(repeat):
        for name in names[turn % len(names):] + names[:turn % len(names)]:  # each goes first in turn
            value_cls, make_tracer = variants[name]
            gc.collect()  # also frees the previous step's graph when it holds cycles
            with (make_tracer() if make_tracer else contextlib.nullcontext()):
                if not collector:
                    gc.disable()
                try:
                    f, b, _ = step(value_cls, xs, ys)
                finally:
                    gc.enable()
            times[name][0].append(f)
            times[name][1].append(b)
    return times


def print_table(title: str, times: dict, nodes: int, base: str = "micrograd 0.1.0") -> dict:
    """One row per variant: median forward and backward, the speed ratio of the medians
    against ``base``, and the range of that ratio over the rounds."""
    rows = {name: (statistics.median(f), statistics.median(b)) for name, (f, b) in times.items()}
    print(f"\n{title}\n{'engine':34} {'forward':>9} {'backward':>9} {'speed vs micrograd':>20} "
          f"{'per round':>14} {'nodes/s':>12}")
    for name, (f, b) in rows.items():
        ratios = round_ratios(times, base, name)
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}x"
        print(f"{name:34} {f * 1e3:7.1f}ms {b * 1e3:7.1f}ms {sum(rows[base]) / (f + b):19.2f}x "
              f"{spread:>14} {nodes / (f + b):12,.0f}")
    return rows


def round_ratios(times: dict, base: str, name: str) -> list:
    """``base``'s time over ``name``'s, round by round (both ran in the same round)."""
    return [(bf + bb) / (f + b) for bf, bb, f, b in zip(*times[base], *times[name])]


def count_nodes(root) -> int:
    from autodiff_trace import topological_order
    return len(topological_order(root))


def bytes_per_node(value_cls, xs, ys) -> float:
    """Memory held by the whole graph (nodes, floats, ids) divided by its node count."""
    gc.collect()
    tracemalloc.start()
    model = MLP(value_cls, 2, [16, 16, 1])
    before = tracemalloc.get_traced_memory()[0]
    total = loss(model, value_cls, xs, ys)
    total.backward()  # grads are floats of their own once filled
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return held / count_nodes_any(total)


def count_nodes_any(root) -> int:
    seen, stack = set(), [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(getattr(node, "parents", None) or getattr(node, "_prev", ()))
    return len(seen)


def engine_without_check():
    """Our engine with the ``if _tracer is not None`` lines (and what they guard) removed,
    to measure what the check itself costs when nobody listens."""
    import autodiff_trace.engine.value as engine

    source = Path(engine.__file__).read_text().splitlines(keepends=True)
    kept, skipping = [], None
    for line in source:
        indent = len(line) - len(line.lstrip())
        if skipping is not None:
            if line.strip() and indent <= skipping:
                skipping = None
            else:
                continue
        if line.strip().startswith("if _tracer is not None") or line.strip().startswith("if tracer is not None"):
            skipping = indent
            continue
        kept.append(line)
    spec = importlib.util.spec_from_loader("autodiff_trace.engine._unchecked", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "autodiff_trace.engine"
    exec(compile("".join(kept), "<engine without tracer checks>", "exec"), module.__dict__)
    return module.Value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    from autodiff_trace import Value, trace
    from autodiff_trace.sinks.jsonl import JsonlSink
    try:
        from micrograd.engine import Value as MicrogradValue
    except ImportError:
        sys.exit("needs micrograd: pip install micrograd==0.1.0")

    xs, ys = moons()
    _, _, ours = step(Value, xs, ys)
    _, _, theirs = step(MicrogradValue, xs, ys)
    assert abs(ours.data - theirs.data) < 1e-9, (ours.data, theirs.data)
    nodes = count_nodes(ours)
    print(f"graph: {nodes} nodes; loss {ours.data:.6f} in both engines")

    tmp = Path(tempfile.mkdtemp())
    from autodiff_trace.adapters import instrument
    from autodiff_trace.analysis.diagnoser import Diagnoser

    def traced_micrograd():
        stack = contextlib.ExitStack()
        stack.enter_context(trace([JsonlSink(tmp / "micrograd.jsonl")], record=False))
        stack.enter_context(instrument())
        return stack

    unchecked = engine_without_check()
    times = interleaved_times({
        "micrograd 0.1.0": (MicrogradValue, None),
        "micrograd 0.1.0, traced to JSONL": (MicrogradValue, traced_micrograd),
        "autodiff_trace, untraced": (Value, None),
        "autodiff_trace, no tracer check": (unchecked, None),
        "autodiff_trace, traced to JSONL": (
            Value, lambda: trace([JsonlSink(tmp / "trace.jsonl")], record=False)),
        "autodiff_trace, trace([JsonlSink])": (  # the default: events also kept in t.events
            Value, lambda: trace([JsonlSink(tmp / "recorded.jsonl")])),
        "autodiff_trace, JSONL + diagnostics": (
            Value, lambda: trace([JsonlSink(tmp / "diagnosed.jsonl")], analyzers=[Diagnoser()], record=False)),
    }, xs, ys, args.repeat)
    print_table("garbage collector on (as scripts run)", times, nodes)
    quiet = print_table("garbage collector off during each step (the engines' own cost)", interleaved_times({
        "micrograd 0.1.0": (MicrogradValue, None),
        "autodiff_trace, untraced": (Value, None),
        "autodiff_trace, no tracer check": (unchecked, None),
    }, xs, ys, args.repeat, collector=False), nodes)
    print(f"\ncost of the tracer check when nobody listens (collector off): "
          f"{(sum(quiet['autodiff_trace, untraced']) / sum(quiet['autodiff_trace, no tracer check']) - 1) * 100:+.1f}%")
    print(f"trace size: {os.path.getsize(tmp / 'trace.jsonl') / 1e6:.1f} MB")
    print(f"memory per node: autodiff_trace {bytes_per_node(Value, xs, ys):.0f} B, "
          f"micrograd {bytes_per_node(MicrogradValue, xs, ys):.0f} B")


if __name__ == "__main__":
    main()
