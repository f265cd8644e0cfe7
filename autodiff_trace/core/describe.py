"""One line of words for one event: the live view, the player, the diff and the Chrome
export all say what an event did with this sentence, and differ only in layout.

>>> from autodiff_trace.core.events import GradAccumulated
>>> write = GradAccumulated(7, 0.1, 1, 0, 3, 1.0, 9.0, 2.0, 11.0, False, None)
>>> describe(write, {0: "x", 3: "add#5"}.get)
'x.grad += 9 from add#5 (2 → 11)'
>>> describe(write, {0: "x", 3: "add#5"}.get, upstream=9.0)
'x.grad += 1 × 9 = 9 from add#5 (2 → 11)'
"""

from __future__ import annotations

from typing import Callable, Optional

from .events import Event
from .text import number, plural

__all__ = ["describe", "NameOf"]

NameOf = Callable[[Optional[int]], str]
_MAX_LISTED = 5  # nodes named in one line; the rest are counted


def _by_id(node: Optional[int]) -> str:
    return f"#{node}"


def describe(event: Event, name_of: NameOf = _by_id, *, upstream: Optional[float] = None) -> str:
    """What ``event`` did, in one line, with node names from ``name_of(node_id)``.

    Args:
        event: any trace event.
        name_of: the name to print for a node id.
        upstream: for a grad write, the gradient its writer passed on; when given with
            the local derivative the line shows ``local × upstream = added``.
    """
    return _SAY[event.kind](event, name_of, upstream)


def _listed(nodes, name_of: NameOf) -> str:
    """The first few names, then ``...``."""
    shown = ", ".join(name_of(n) for n in nodes[:_MAX_LISTED])
    return shown + (", ..." if len(nodes) > _MAX_LISTED else "")


def _created(e, name_of: NameOf, upstream: Optional[float]) -> str:
    if not e.parents:
        return f"made {name_of(e.node)} = {number(e.value)} ({e.op or 'leaf'})"
    args = ", ".join(name_of(p) for p in e.parents)
    return f"made {name_of(e.node)} = {e.op}({args}) = {number(e.value)}"


def _started(e, name_of: NameOf, upstream: Optional[float]) -> str:
    stale = [(n, g) for n, g in zip(e.order, e.grads_before) if g != 0]
    text = f"pass {e.pass_no} begins at {name_of(e.root)}: {plural(len(e.order), 'node')} to visit"
    if stale:
        listed = ", ".join(f"{name_of(n)} {number(g)}" for n, g in stale[:_MAX_LISTED])
        text += f"; grads already non-zero: {listed}" + (", ..." if len(stale) > _MAX_LISTED else "")
    return text


def _fired(e, name_of: NameOf, upstream: Optional[float]) -> str:
    return f"{name_of(e.node)} fires, passing on {number(e.upstream)} to its inputs"


def _write(e, name_of: NameOf, upstream: Optional[float]) -> str:
    amount = number(e.contribution)
    if e.local_grad is not None and upstream is not None:
        amount = f"{number(e.local_grad)} × {number(upstream)} = {amount}"
    source = ("outside any backward function" if e.fired_by is None
              else f"from {name_of(e.fired_by)}")
    lost = f", {number(e.grad_before)} lost" if e.replaced and e.grad_before else ""
    return (f"{name_of(e.target)}.grad {'=' if e.replaced else '+='} {amount} {source} "
            f"({number(e.grad_before)} → {number(e.grad_after)}{lost})")


def _zeroed(e, name_of: NameOf, upstream: Optional[float]) -> str:
    return f"zeroed {plural(len(e.nodes), 'grad')} ({_listed(e.nodes, name_of)})"


def _finished(e, name_of: NameOf, upstream: Optional[float]) -> str:
    return (f"pass {e.pass_no} ends: {plural(e.fired, 'backward function')} fired, "
            f"{plural(e.accumulated, 'grad write')}")


def _finding(e, name_of: NameOf, upstream: Optional[float]) -> str:
    return f"{e.severity} {e.finding}: {e.message}"


_SAY = {"node_created": _created, "backward_started": _started, "backward_fn_fired": _fired,
        "grad_accumulated": _write, "grads_zeroed": _zeroed, "backward_finished": _finished, "diagnostic": _finding}
