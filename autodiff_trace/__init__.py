"""autodiff_trace: see every step of a reverse-mode autodiff backward pass.

>>> from autodiff_trace import Value, trace
>>> with trace() as t:
...     x = Value(2.0, name="x")
...     y = (x + 2) ** 2
...     y.backward()
>>> y.data, x.grad, t.events[-1].kind
(16.0, 8.0, 'backward_finished')

The public names are loaded on first use (PEP 562), so ``from autodiff_trace import
Value`` loads the engine and the event core only: no Rich, no graphviz, no typer.
"""

from __future__ import annotations

import importlib

from ._version import __version__
from .core.tracer import Tracer

# name -> the module that defines it
_HOMES = {
    **dict.fromkeys(
        ["Value", "DomainError", "topological_order", "zero_grad", "backward",
         "add", "sub", "mul", "div", "power", "neg",
         "sin", "cos", "tan", "log", "exp", "sqrt", "relu", "sigmoid", "tanh"], ".engine"),
    **dict.fromkeys(["trace", "active_tracer"], ".core.tracer"),
    "SCHEMA_VERSION": ".core.events",
    **dict.fromkeys(["load_events", "iter_events", "read_header", "TraceFileError"], ".core.tracefile"),
    **dict.fromkeys(["Diagnoser", "diagnose", "check_grads", "GradcheckError"], ".analysis"),
    "diagram": ".views.graph.diagram", "Diagram": ".views.graph.picture",
    **dict.fromkeys(["JsonlSink", "Recorder", "DotSink", "RichTreeSink", "FindingsSink"], ".sinks"),
    "print_report": ".views.terminal.report",
    **dict.fromkeys(["traced", "traced_block"], ".frontends.session"),
}

__all__ = [*_HOMES, "Tracer", "__version__"]


def _draw(events):
    """A trace's last pass as a diagram: how a Tracer shows itself in Jupyter."""
    from .views.graph.diagram import diagram

    return diagram(events)


Tracer.display = staticmethod(_draw)


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'autodiff_trace' has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value  # the next lookup is an ordinary one
    return value


def __dir__() -> list:
    return sorted(__all__)


def load_ipython_extension(ipython) -> None:
    """``%load_ext autodiff_trace``: the ``%%trace_backward`` and ``%trace_backward`` magics."""
    from .frontends.magic import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython) -> None:
    """``%unload_ext autodiff_trace``: remove those magics."""
    from .frontends.magic import unload_ipython_extension as unload

    unload(ipython)
