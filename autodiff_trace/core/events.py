"""The event schema: small immutable records, one per thing that happens in a trace.

Every event carries ``seq`` (its position in the trace, from 0) and ``t`` (seconds
since the trace began, monotonic). Node ids are the engine's small integers; an
event never holds a live node, only ids, numbers and strings, so it can be written
to JSON and read back unchanged. ``docs/events.md`` documents every field.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional, Tuple, Union

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "Event",
    "NodeCreated",
    "BackwardStarted",
    "BackwardFnFired",
    "GradAccumulated",
    "GradsZeroed",
    "BackwardFinished",
    "Diagnostic",
    "Finding",
    "EVENT_TYPES",
    "to_dict",
    "from_dict",
]

SCHEMA = "autodiff_trace.events"
SCHEMA_VERSION = 1


class NodeCreated(NamedTuple):
    """A node was made: a leaf (``op == ""``) or the result of an op on ``parents``."""

    seq: int
    t: float
    node: int
    op: str
    value: float
    parents: Tuple[int, ...]
    name: str
    site: Optional[str]  # "path/to/file.py:14" where user code created it
    function: Optional[str]  # the function that line belongs to
    kind = "node_created"


class BackwardStarted(NamedTuple):
    """A backward pass began at ``root``; ``order`` is the order nodes will be visited.

    ``grads_before[i]`` is the grad ``order[i]`` held before the pass: anything
    non-zero there was left by an earlier pass.
    """

    seq: int
    t: float
    pass_no: int
    root: int
    seed: float
    order: Tuple[int, ...]
    grads_before: Tuple[float, ...]
    kind = "backward_started"


class BackwardFnFired(NamedTuple):
    """A node's backward function ran: it is about to push ``upstream`` to its parents.

    ``grad`` is what the node's grad field held at that moment; ``upstream`` is the
    gradient it passes on (the same for engines that propagate the stored grad).
    """

    seq: int
    t: float
    pass_no: int
    node: int
    grad: float
    upstream: float
    kind = "backward_fn_fired"


class GradAccumulated(NamedTuple):
    """``target``'s grad went from ``grad_before`` to ``grad_after``.

    ``contribution`` is what was added (``local_grad * upstream`` when the rule is
    known); ``fired_by`` is the node whose backward function made the write (None
    for a write outside any backward function, such as seeding the root);
    ``replaced`` is True when the write assigned instead of adding (``=`` for ``+=``).
    """

    seq: int
    t: float
    pass_no: int
    target: int
    fired_by: Optional[int]
    local_grad: Optional[float]
    contribution: float
    grad_before: float
    grad_after: float
    replaced: bool
    site: Optional[str]  # the line that wrote the grad, when it is user code
    kind = "grad_accumulated"


class GradsZeroed(NamedTuple):
    """The grads of ``nodes`` were reset to zero; ``grads_before`` is what they held."""

    seq: int
    t: float
    nodes: Tuple[int, ...]
    grads_before: Tuple[float, ...]
    kind = "grads_zeroed"


class BackwardFinished(NamedTuple):
    """The backward pass ``pass_no`` ended, ``duration`` seconds after it began."""

    seq: int
    t: float
    pass_no: int
    root: int
    duration: float
    fired: int
    accumulated: int
    kind = "backward_finished"


class Diagnostic(NamedTuple):
    """A finding about the trace: what went wrong, where, and how to fix it."""

    seq: int
    t: float
    pass_no: int
    finding: str  # e.g. "stale_gradient", "fired_outside_graph"
    severity: str  # "error", "warning" or "info"
    message: str
    nodes: Tuple[int, ...]
    names: Tuple[str, ...]
    site: Optional[str]
    hint: str
    kind = "diagnostic"


class Finding(NamedTuple):
    """What an analyzer reports; the tracer stamps it into a :class:`Diagnostic` event."""

    pass_no: int
    finding: str
    severity: str
    message: str
    nodes: Tuple[int, ...]
    names: Tuple[str, ...]
    site: Optional[str]
    hint: str


Event = Union[
    NodeCreated,
    BackwardStarted,
    BackwardFnFired,
    GradAccumulated,
    GradsZeroed,
    BackwardFinished,
    Diagnostic,
]

EVENT_TYPES = {
    cls.kind: cls
    for cls in (
        NodeCreated,
        BackwardStarted,
        BackwardFnFired,
        GradAccumulated,
        GradsZeroed,
        BackwardFinished,
        Diagnostic,
    )
}

# JSON has no NaN or infinity; they travel as these strings and come back as floats.
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _json_float(x: float) -> Union[float, str]:
    if math.isfinite(x):
        return x
    return "NaN" if x != x else ("Infinity" if x > 0 else "-Infinity")


def to_dict(event: Event) -> dict:
    """The event as a JSON-ready dict, ``kind`` first.

    >>> to_dict(GradsZeroed(3, 0.5, (1, 2), (2.0, float("nan"))))
    {'kind': 'grads_zeroed', 'seq': 3, 't': 0.5, 'nodes': (1, 2), 'grads_before': [2.0, 'NaN']}
    """
    out = {"kind": event.kind}
    out.update(zip(event._fields, event))
    for name in _CHECKED[event.__class__]:
        value = out[name]
        if value.__class__ is float:
            if value - value != 0.0:  # only NaN and ±inf fail this
                out[name] = _json_float(value)
        elif value.__class__ is tuple and value and sum(value) - sum(value) != 0.0:
            out[name] = [_json_float(v) for v in value]
    return out


# Fields that hold floats (or tuples of floats): only these may carry "NaN" etc.
_FLOAT_FIELDS = frozenset({
    "t", "value", "seed", "grads_before", "grad", "upstream",
    "local_grad", "contribution", "grad_before", "grad_after", "duration",
})


# Per event type, the float fields that may hold NaN or ±inf (``t`` never does).
_CHECKED = {
    cls: tuple(f for f in cls._fields if f in _FLOAT_FIELDS and f != "t")
    for cls in EVENT_TYPES.values()
}


def _restore(value: Any, is_float: bool) -> Any:
    if value.__class__ is list:
        return tuple(_restore(v, is_float) for v in value)
    if is_float and value.__class__ is str:
        if value not in _NON_FINITE:
            raise ValueError(f"{value!r} is not a number")
        return _NON_FINITE[value]
    return value


def from_dict(data: dict) -> Event:
    """Rebuild an event from :func:`to_dict`'s output; ``ValueError`` says what is wrong.

    >>> from_dict({'kind': 'grads_zeroed', 'seq': 3, 't': 0.5, 'nodes': [1], 'grads_before': ['NaN']})
    GradsZeroed(seq=3, t=0.5, nodes=(1,), grads_before=(nan,))
    """
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    kind = data.get("kind")
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        known = ", ".join(sorted(EVENT_TYPES))
        raise ValueError(f"unknown event kind {kind!r} (known: {known})")
    fields = {k: v for k, v in data.items() if k != "kind"}
    missing = [f for f in cls._fields if f not in fields]
    extra = [f for f in fields if f not in cls._fields]
    if missing or extra:
        problems = []
        if missing:
            problems.append("missing " + ", ".join(missing))
        if extra:
            problems.append("unexpected " + ", ".join(extra))
        raise ValueError(f"{kind} event: {'; '.join(problems)}")
    return cls(*(_restore(fields[f], f in _FLOAT_FIELDS) for f in cls._fields))
