"""autodiff_trace: see every step of a reverse-mode autodiff backward pass.

>>> from autodiff_trace import Value, trace
>>> with trace() as t:
...     x = Value(2.0, name="x")
...     y = (x + 2) ** 2
...     y.backward()
>>> y.data, x.grad, t.events[-1].kind
(16.0, 8.0, 'backward_finished')
"""

from .diagnostics import Diagnoser, diagnose
from .diagram import Diagram, diagram
from .engine import DomainError, Value, topological_order, zero_grad
from .events import SCHEMA_VERSION
from .functional import (
    add, backward, cos, div, exp, log, mul, neg, power, relu, sigmoid, sin, sqrt, sub, tan, tanh,
)
from .gradcheck import GradcheckError, check_grads
from .sinks.dot import DotSink
from .sinks.jsonl import JsonlSink, TraceFileError, iter_events, load_events, read_header
from .sinks.recorder import Recorder
from .sinks.rich_tree import RichTreeSink, print_report
from .session import traced, traced_block
from .tracer import Tracer, active_tracer, trace

__all__ = [
    "Value", "DomainError", "topological_order", "zero_grad", "backward",
    "add", "sub", "mul", "div", "power", "neg",
    "sin", "cos", "tan", "log", "exp", "sqrt", "relu", "sigmoid", "tanh",
    "trace", "Tracer", "active_tracer", "traced", "traced_block", "JsonlSink", "Recorder",
    "load_events", "iter_events", "read_header", "TraceFileError", "SCHEMA_VERSION",
    "Diagnoser", "diagnose", "check_grads", "GradcheckError",
    "DotSink", "diagram", "Diagram", "RichTreeSink", "print_report",
    "__version__",
]

__version__ = "0.1.0"


def load_ipython_extension(ipython) -> None:
    """``%load_ext autodiff_trace``: the ``%%trace_backward`` and ``%trace_backward`` magics."""
    from .magic import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython) -> None:
    """``%unload_ext autodiff_trace``: remove those magics."""
    from .magic import unload_ipython_extension as unload

    unload(ipython)
