"""What the derivative-rule check adds to a traced run of micrograd's demo MLP.

MLP(2, [16, 16, 1]) on 100 points (about 65,000 nodes), micrograd 0.1.0 unmodified,
traced to JSONL by the adapters: once with the rule check as it runs by default, once
with it switched off, in turns. Prints the medians, their spread and the ratio measured in
this one run:

    python benchmarks/bench_rulecheck.py [--repeat 5]

Needs ``pip install micrograd==0.1.0``.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_mlp import MLP, loss, moons  # noqa: E402


def traced_step(value_cls, xs, ys, out: Path, check: bool) -> tuple:
    """Forward and backward once under trace() and instrument(); (seconds, forks, checks,
    seconds spent in forked re-runs)."""
    from autodiff_trace import trace
    from autodiff_trace.adapters import instrument
    from autodiff_trace.sinks.jsonl import JsonlSink

    gc.collect()
    start = time.perf_counter()
    with trace([JsonlSink(out)], record=False), instrument() as found:
        rulecheck = found.reporter.rulecheck
        rulecheck.off = not check
        model = MLP(value_cls, 2, [16, 16, 1])
        total = loss(model, value_cls, xs, ys)
        total.backward()
    return (time.perf_counter() - start, rulecheck.forks, sum(rulecheck.checks.values()),
            rulecheck.fork_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    try:
        from micrograd.engine import Value
    except ImportError:
        sys.exit("needs micrograd: pip install micrograd==0.1.0")

    xs, ys = moons()
    out = Path(tempfile.mkdtemp()) / "trace.jsonl"
    times = {True: [], False: []}
    forks = checks = 0
    in_forks = []
    for turn in range(args.repeat):
        for check in ((True, False) if turn % 2 else (False, True)):  # neither always goes first
            seconds, n_forks, n_checks, fork_seconds = traced_step(Value, xs, ys, out, check)
            times[check].append(seconds)
            if check:
                forks, checks = n_forks, n_checks
                in_forks.append(fork_seconds)
    with_check, without = statistics.median(times[True]), statistics.median(times[False])
    import resource
    print(f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    print(f"traced run, rule check on:  {with_check:.3f} s (median of {args.repeat}; "
          f"{min(times[True]):.3f} to {max(times[True]):.3f} s)")
    print(f"traced run, rule check off: {without:.3f} s ({min(times[False]):.3f} to {max(times[False]):.3f} s)")
    ratios = sorted(on / off for on, off in zip(times[True], times[False]))
    print(f"turn by turn, on / off: {ratios[0]:.3f} to {ratios[-1]:.3f}")
    print(f"the rule check costs {(with_check / without - 1) * 100:+.1f}% "
          f"({forks} forked re-runs, {checks} rule checks); the forked re-runs themselves "
          f"took {statistics.median(in_forks) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
