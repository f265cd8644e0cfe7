"""Tracing a user's own autodiff engine, unmodified.

>>> from autodiff_trace import trace
>>> from autodiff_trace.adapters import instrument
>>> with trace() as t, instrument() as found:
...     class Node:
...         def __init__(self, val, parents=()):
...             self.val, self.der, self.parents = val, 0.0, parents
...             self.backprop = lambda: None
...     x = Node(2.0)
>>> str(found.classes[-1].vocabulary), t.events[-1].name
('value=val, grad=der, parents=parents, backward=backprop', 'x')
"""

from .detect import CANDIDATES, ROLES, EngineSpecError, Vocabulary, parse_attr_options
from .instrument import Instrumentation, Recognised, instrument

__all__ = ["instrument", "Instrumentation", "Recognised", "Vocabulary", "EngineSpecError",
           "ROLES", "CANDIDATES", "parse_attr_options"]
