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

__all__ = ["describe", "NameOf", "made", "fires", "grad_write"]

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
    return made(name_of(e.node), e.op, e.value, [name_of(p) for p in e.parents] if e.parents else None)


def made(name: str, op: str, value, parent_names) -> str:
    """A node's creation from its fields (``parent_names``: None or empty for a leaf); a
    reader of columns says it with the words :func:`describe` uses."""
    if not parent_names:
        return f"made {name} = {number(value)} ({op or 'leaf'})"
    return f"made {name} = {op}({', '.join(parent_names)}) = {number(value)}"


def _started(e, name_of: NameOf, upstream: Optional[float]) -> str:
    stale = [(n, g) for n, g in zip(e.order, e.grads_before) if g != 0]
    text = f"pass {e.pass_no} begins at {name_of(e.root)}: {plural(len(e.order), 'node')} to visit"
    if stale:
        listed = ", ".join(f"{name_of(n)} {number(g)}" for n, g in stale[:_MAX_LISTED])
        text += f"; grads already non-zero: {listed}" + (", ..." if len(stale) > _MAX_LISTED else "")
    return text


def _fired(e, name_of: NameOf, upstream: Optional[float]) -> str:
    return fires(name_of(e.node), e.upstream)


def fires(name: str, upstream) -> str:
    """A backward function's firing, from the node's name and what it passes on."""
    return f"{name} fires, passing on {number(upstream)} to its inputs"


def _write(e, name_of: NameOf, upstream: Optional[float]) -> str:
    return grad_write(name_of(e.target), None if e.fired_by is None else name_of(e.fired_by), e.local_grad,
                      e.contribution, e.grad_before, e.grad_after, e.replaced, upstream)


def grad_write(target: str, fired_by: Optional[str], local_grad, contribution, grad_before, grad_after,
               replaced: bool, upstream: Optional[float] = None) -> str:
    """A grad write from its fields, the nodes by name (``fired_by``: None outside any
    backward function); ``upstream`` as for :func:`describe`."""
    amount = number(contribution)
    if local_grad is not None and upstream is not None:
        amount = f"{number(local_grad)} × {number(upstream)} = {amount}"
    source = "outside any backward function" if fired_by is None else f"from {fired_by}"
    lost = f", {number(grad_before)} lost" if replaced and grad_before else ""
    return (f"{target}.grad {'=' if replaced else '+='} {amount} {source} "
            f"({number(grad_before)} → {number(grad_after)}{lost})")


def _zeroed(e, name_of: NameOf, upstream: Optional[float]) -> str:
    return f"zeroed {plural(len(e.nodes), 'grad')} ({_listed(e.nodes, name_of)})"


def _finished(e, name_of: NameOf, upstream: Optional[float]) -> str:
    return (f"pass {e.pass_no} ends: {plural(e.fired, 'backward function')} fired, "
            f"{plural(e.accumulated, 'grad write')}")


def _finding(e, name_of: NameOf, upstream: Optional[float]) -> str:
    return f"{e.severity} {e.finding}: {e.message}"


_SAY = {"node_created": _created, "backward_started": _started, "backward_fn_fired": _fired,
        "grad_accumulated": _write, "grads_zeroed": _zeroed, "backward_finished": _finished, "diagnostic": _finding}
