"""Peak memory and time of replaying a 1M-event trace: stats, export, diff, against loading it.

Writes two traces of about a million events each with the real engine and JsonlSink:
``loop`` (a training loop: many small passes) and ``chain`` (one pass over a long
chain). Each replay runs in a fresh interpreter, which reports its peak resident
memory above what it held after the imports. ``stats`` and ``export`` keep counters
and one name per node; ``diff`` keeps a key, name, grad and parents per node of each
trace, plus the rest of a pass once the traces part; ``load_events`` is the contrast:

    python benchmarks/bench_replay.py [--events 1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import resource, sys, time, io
from pathlib import Path
from autodiff_trace.core.tracefile import iter_events, load_events
from autodiff_trace.replay.summary import trace_stats
from autodiff_trace.views.chrome import write_chrome_trace
from autodiff_trace.replay.tracediff import diff_traces
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
op, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
start = time.perf_counter()
if op == "load_events (not streaming)":
    n = len(load_events(path))
elif op == "stats":
    n = trace_stats(iter_events(path, runs=True))["events"]
elif op == "export --chrome":
    n = write_chrome_trace(iter_events(path, runs=True), out)
elif op == "diff (trace against itself)":
    n = diff_traces(path, path).a.count
took = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(n, took, (peak - base) / 1024, base / 1024)
"""

OPERATIONS = ("stats", "export --chrome", "diff (trace against itself)", "load_events (not streaming)")


def write_loop(path: Path, events: int) -> int:
    """A training loop: w*x + b, squared, zero_grad, backward, until ``events`` are written."""
    from autodiff_trace import Value, trace, zero_grad
    from autodiff_trace.sinks.jsonl import JsonlSink

    sink = JsonlSink(path)
    with trace(sinks=[sink], record=False) as t:
        w, b = Value(0.5, name="w"), Value(0.1, name="b")
        while t.event_count < events:
            h = w * 2.0 + b
            loss = h * h
            zero_grad([w, b])
            loss.backward()
    return t.event_count


def write_chain(path: Path, events: int) -> int:
    """One pass over a chain ``x = x * 1.0001 + 0.0`` long enough for ``events`` events."""
    from autodiff_trace import Value, trace
    from autodiff_trace.sinks.jsonl import JsonlSink

    sink = JsonlSink(path)
    with trace(sinks=[sink], record=False) as t:
        x = root = Value(1.0, name="x")
        for _ in range(events // 4):  # a node, its firing and one write each, plus the const
            x = x * 1.0001
        x.backward()
    del root
    return t.event_count


def measure(op: str, path: Path, folder: Path) -> tuple:
    done = subprocess.run([sys.executable, "-c", CHILD, op, str(path), str(folder / "chrome.json")],
                          capture_output=True, text=True, check=True)
    count, took, peak, base = done.stdout.split()
    return int(count), float(took), float(peak), float(base)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="write the traces here and keep them")
    parser.add_argument("--write", nargs=2, metavar=("SHAPE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write:  # in a child of its own, so the graph it builds does not count in the readers
        shape, path = args.write
        print((write_loop if shape == "loop" else write_chain)(Path(path), args.events))
        return
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_replay_"))
    folder.mkdir(parents=True, exist_ok=True)
    for shape in ("loop", "chain"):
        path = folder / f"{shape}.jsonl"
        start = time.perf_counter()
        count = int(subprocess.run([sys.executable, __file__, "--events", str(args.events), "--write",
                                    shape, str(path)], capture_output=True, text=True, check=True).stdout)
        size = path.stat().st_size / 2**20
        print(f"\n{shape}: {count:,} events, {size:.0f} MiB, written in {time.perf_counter() - start:.1f} s")
        print(f"  {'operation':<30} {'events':>10} {'seconds':>8} {'peak MiB above imports':>24}")
        for op in OPERATIONS:
            n, took, peak, base = measure(op, path, folder)
            print(f"  {op:<30} {n:>10,} {took:>8.1f} {peak:>24.1f}")
        print(f"  (the interpreter with the imports held {base:.0f} MiB)")
        if not args.keep:
            path.unlink()
            (folder / "chrome.json").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
