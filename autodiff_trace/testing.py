"""Helpers for testing code that uses autodiff_trace."""

from __future__ import annotations

import linecache
from typing import List, Sequence

from .engine.value import Value
from .core.events import Event
from .engine.functional import add, backward, mul
from .core.tracer import Analyzer, Sink, trace

__all__ = ["notebook_sequence", "NOTEBOOK_CELLS"]

# The seed notebook's cells as autodiff_trace code: two backward passes, with no
# zeroing of the gradients in between.
NOTEBOOK_CELLS = """\
x = Value(5, name="x")
y = Value(4, name="y")
z = add(x, x)
backward(z)
z = mul(add(x, y), add(x, y))
backward(z)
"""
_CELLS_FILENAME = "<seed notebook>"


def notebook_sequence(sinks: Sequence[Sink] = (), analyzers: Sequence[Analyzer] = ()) -> List[Event]:
    """The seed notebook's cells run under autodiff_trace's engine; returns the events.

    The cells run as code of their own (sites ``<seed notebook>:N``), so that node
    names come from their assignment lines: ``z`` for both roots, ``add#N`` for the
    two inner adds.

    Args:
        sinks: sinks to trace into, besides the returned list.
        analyzers: analyzers to run on the events.
    """
    linecache.cache[_CELLS_FILENAME] = (len(NOTEBOOK_CELLS), None, NOTEBOOK_CELLS.splitlines(True),
                                        _CELLS_FILENAME)
    code = compile(NOTEBOOK_CELLS, _CELLS_FILENAME, "exec")
    with trace(sinks=list(sinks), analyzers=list(analyzers)) as tracer:
        exec(code, {"Value": Value, "add": add, "backward": backward, "mul": mul})
    return tracer.events
