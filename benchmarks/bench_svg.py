"""Time from trace events to SVG: building the DOT, then laying it out and drawing it.

Run: ``python benchmarks/bench_svg.py [--repeat N]``. Cases: the notebook's two passes
(pass 2 drawn) and a pass of about 300 value nodes (the default cap), each rendered by
graphviz-pure and, when one is installed, by the system Graphviz ``dot``. Medians in
milliseconds; the last column compares each renderer with graphviz-pure on the same case.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time

from autodiff_trace import Value, trace
from autodiff_trace.views.graph.render import RenderError
from autodiff_trace.views.graph.diagram import diagram
from autodiff_trace.testing import notebook_sequence

__all__ = ["wide_events", "main"]


def wide_events(terms: int = 75) -> list:
    """A sum of ``terms`` products w_i * x_i: 4 value nodes a term, about 300 in all."""
    with trace() as t:
        total = Value(0.0, name="total")
        for i in range(terms):
            total = total + Value(0.1 * i, name=f"w{i}") * Value(float(i), name=f"x{i}")
        total.backward()
    return t.events


def _median_ms(work, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per measurement (median)")
    args = parser.parse_args(argv)
    renderers = ["graphviz-pure"] + (["dot"] if shutil.which("dot") else [])
    cases = [("notebook bug, pass 2", notebook_sequence(), 2), ("300-node pass", wide_events(), 1)]
    print(f"{'case':<22} {'nodes':>5} {'build DOT':>10} {'renderer':<14} {'to SVG':>9} {'ratio':>6}")
    for label, events, pass_no in cases:
        picture = diagram(events, pass_no)
        build = _median_ms(lambda: diagram(events, pass_no), args.repeat)
        baseline = None
        for renderer in renderers:
            try:
                ms = _median_ms(lambda: picture.pipe("svg", renderer=renderer), args.repeat)
            except RenderError as exc:
                print(f"{label:<22} {picture.total:>5} {build:>8.2f}ms {renderer:<14} failed: {exc}")
                continue
            baseline = baseline or ms
            print(f"{label:<22} {picture.total:>5} {build:>8.2f}ms {renderer:<14} "
                  f"{ms:>7.1f}ms {ms / baseline:>5.2f}x")
    if len(renderers) == 1:
        print("(no system Graphviz `dot` on PATH: only graphviz-pure was timed)")


if __name__ == "__main__":
    main()
