"""Bytes per event of micrograd's demo step, on disk and held in memory.

One forward and backward of MLP(2, [16, 16, 1]) on 100 points with our ``Value``
(benchmarks/bench_mlp.py's step, about 258,000 events), traced three ways:

- on disk: ``with trace([JsonlSink(path)], record=False)``: the file's bytes per event,
  with each kind of line's count and average length, and what the same events take
  written as object lines;
- held by ``with trace([JsonlSink(path)]) as t`` (events kept for ``t.events``): what
  the tracer still holds once the block is left and the graph is gone (each batch of hot
  events as the compact lines the file got, the other events as objects), then once
  ``t.events`` has been read (one event object per event);
- held by the replay model (:class:`~autodiff_trace.core.model.TraceModel`, in columns)
  built from that file, as the replay commands build it.

Memory is what ``tracemalloc`` counts as allocated and not freed, divided by the
events: the figures are exact for this run, not a timing:

    python benchmarks/bench_bytes.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import tracemalloc
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_mlp import MLP, loss, moons  # noqa: E402

from autodiff_trace import Value, iter_events, trace  # noqa: E402
from autodiff_trace.core.model import TraceModel  # noqa: E402
from autodiff_trace.core.tracefile import encode_event  # noqa: E402
from autodiff_trace.sinks.jsonl import JsonlSink  # noqa: E402


def demo_step(xs: list, ys: list) -> None:
    """The step bench_mlp.py times: build the model and the loss, run backward; the graph
    is freed on return."""
    model = MLP(Value, 2, [16, 16, 1])
    loss(model, Value, xs, ys).backward()


def line_kinds(path: Path) -> Counter:
    """Per kind of line (a compact line's tag, an object line's kind, ``site line``): (count, bytes)."""
    counts: Counter = Counter()
    with open(path, "rb") as file:
        next(file)  # the header
        for line in file:
            if line.startswith(b'["'):
                kind = f'"{line[2:3].decode()}" (compact)'
            elif line.startswith(b'{"site_no"'):
                kind = "site line"
            else:
                kind = line[9:line.index(b'"', 9)].decode() if line.startswith(b'{"kind":"') else "other"
            counts[kind, "lines"] += 1
            counts[kind, "bytes"] += len(line)
    return counts


def held_while(build) -> tuple:
    """Bytes ``build()`` leaves allocated (tracemalloc), and what it returned."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = build()
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return held, kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="write the trace here instead of a temporary folder")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    xs, ys = moons()

    path = folder / "demo_step.jsonl"
    with trace([JsonlSink(path)], record=False) as t:
        demo_step(xs, ys)
    events = t.event_count
    size = path.stat().st_size
    as_objects = sum(len(encode_event(event)) for event in iter_events(path))
    print(f"micrograd's demo step: {events:,} events")
    print(f"\non disk: {size:,} bytes, {size / events:.1f} bytes per event "
          f"(the header included; written as object lines: {as_objects / events:.1f})")
    kinds = line_kinds(path)
    print(f"  {'line':28} {'lines':>9} {'bytes':>12} {'bytes/line':>11}")
    for kind in sorted({k for k, _ in kinds}, key=lambda k: -kinds[k, "bytes"]):
        lines, written = kinds[kind, "lines"], kinds[kind, "bytes"]
        print(f"  {kind:28} {lines:9,} {written:12,} {written / lines:11.1f}")

    def recorded():
        with trace([JsonlSink(folder / "recorded.jsonl")]) as t:
            demo_step(xs, ys)
        return t
    held, tracer = held_while(recorded)
    print(f"\nheld in memory by `with trace([JsonlSink(path)]) as t` once the block is left "
          f"(its batches as the lines the file got): {held:,} bytes, {held / tracer.event_count:.1f} bytes per event")
    held_events, read = held_while(lambda: tracer.events)
    print(f"  and once t.events has been read ({len(read):,} event objects): "
          f"{held + held_events:,} bytes, {(held + held_events) / len(read):.1f} bytes per event")
    tracer = read = None  # freed before the model is measured

    held, model = held_while(lambda: TraceModel.from_events(iter_events(path)))
    print(f"held in memory by the replay model built from the file (TraceModel, in columns): "
          f"{held:,} bytes, {held / model.events:.1f} bytes per event")


if __name__ == "__main__":
    main()
