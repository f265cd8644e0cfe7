"""Graphviz pictures of backward passes: the forward graph with the backward pass on top.

:func:`diagram` draws one pass (or one step of it) as a :class:`Diagram`: node by node
(:mod:`.builder`), or with each model module's nodes folded into one box (:mod:`.folded`).
"""

from __future__ import annotations

from typing import Optional, Union

from .builder import Builder
from .folded import FoldedBuilder, folds
from .picture import Diagram
from ...core.model import TraceModel

__all__ = ["diagram", "check_layout"]

RANKDIRS = ("LR", "RL", "TB", "BT")


def check_layout(rankdir: str, max_nodes: int) -> None:
    """Raise a one-line ValueError for a direction Graphviz does not know or a node cap below 1.

    >>> check_layout("LR", 300)
    >>> check_layout("up", 300)
    Traceback (most recent call last):
    ...
    ValueError: rankdir 'up' is not a Graphviz direction; use LR, RL, TB or BT
    """
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir {rankdir!r} is not a Graphviz direction; use LR, RL, TB or BT")
    if max_nodes < 1:
        raise ValueError(f"max_nodes must be at least 1, not {max_nodes}")


def _as_model(events_or_model) -> TraceModel:
    if isinstance(events_or_model, TraceModel):
        return events_or_model
    events = getattr(events_or_model, "events", events_or_model)  # a Tracer or a Recorder
    try:
        return TraceModel.from_events(events)
    except (TypeError, AttributeError):
        raise TypeError(f"diagram() needs a TraceModel, a list of events or a tracer, "
                        f"not {type(events_or_model).__name__}") from None


def diagram(events_or_model, pass_no: Optional[int] = None, *, max_nodes: int = 300,
            rankdir: str = "LR", step: Optional[int] = None, modules: Union[bool, str] = "auto") -> Diagram:
    """Draw one backward pass of a trace.

    Args:
        events_or_model: a :class:`TraceModel`, a list of events, or a tracer/recorder.
        pass_no: the pass to draw (1, 2, ...); None for the last one.
        max_nodes: above this many value nodes the rest are folded into counted groups.
        rankdir: Graphviz direction: ``"LR"`` (inputs left), ``"TB"``, ``"RL"``, ``"BT"``.
        step: draw the pass as it stood after this many backward functions had fired.
        modules: how nodes made in a module (PyTorch) are drawn: ``"box"`` inside a box per
            module, ``"fold"`` one box per module for all its nodes, ``"none"`` plainly;
            ``"auto"`` folds a pass with many such nodes and boxes the others.
    """
    model = _as_model(events_or_model)
    p = model.require_pass(pass_no, "draw")
    check_layout(rankdir, max_nodes)
    fold = folds(model, p, modules) and step is None  # an animation's frames keep every node
    builder = (FoldedBuilder if fold else Builder)(model, p, max_nodes, rankdir, step)
    builder.by_module = modules not in (False, "none")
    return builder.build()
