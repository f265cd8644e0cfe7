"""The event schema: small immutable records, one per thing that happens in a trace.

Every event carries ``seq`` (its position in the trace, from 0) and ``t`` (seconds
since the trace began, monotonic). Node ids are the engine's small integers; an
event never holds a live node, only ids, numbers and strings, so it can be written
to JSON and read back unchanged. ``docs/events.md`` documents every field.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional, Tuple, Union

from .quick_read import quick_reader
from .fields import FIELD_CHECKS, MAX_LIST_ITEMS, NUMBER_FIELDS, FieldError, LimitError, json_number, shown

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
    "PassSummary",
    "Finding",
    "EVENT_TYPES",
    "to_dict",
    "MAX_LIST_ITEMS",
    "from_dict",
]

SCHEMA = "autodiff_trace.events"
SCHEMA_VERSION = 4
# version 2 added ``pass_summary``, version 3 compact lines (arrays) for the hot events,
# version 4 arrays without their ``seq`` nor the numbers a reader can tell from the rest;
# a file of an earlier version reads unchanged
READABLE_VERSIONS = (1, 2, 3, 4)


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
    module: Optional[str] = None  # optional: the model part that made it ("model.0"); JSON omits null
    tensor: Optional[str] = None  # optional: dtype and shape of its tensor ("float32[64, 512]"); JSON omits null
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


class PassSummary(NamedTuple):
    """A pass whose events a trace file left out (the keep policy): its counts instead.

    It stands where the pass's ``backward_finished`` stood, with that event's ``seq``
    and ``t``; ``events`` counts the lines it replaces (the pass, and the nodes made
    since the previous pass), ``made`` the nodes among them, ``reached`` the nodes
    its root reached.
    """

    seq: int
    t: float
    pass_no: int
    root: int
    reached: int
    made: int
    events: int
    fired: int
    accumulated: int
    duration: float
    kind = "pass_summary"


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
    PassSummary,
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
        PassSummary,
    )
}

# -- the JSON form ----------------------------------------------------------------------
# Per event type, the number fields that may hold NaN, ±inf or a complex (``t`` never does).
_OPTIONAL = {NodeCreated: ("module", "tensor")}  # fields JSON leaves out when unknown (None)
_CHECKED = {
    cls: tuple(f for f in cls._fields if f in NUMBER_FIELDS and f != "t")
    for cls in EVENT_TYPES.values()
}


def to_dict(event: Event) -> dict:
    """The event as a JSON-ready dict, ``kind`` first (special numbers: :mod:`.fields`).

    >>> to_dict(GradsZeroed(3, 0.5, (1, 2), (2.0, float("nan"))))
    {'kind': 'grads_zeroed', 'seq': 3, 't': 0.5, 'nodes': (1, 2), 'grads_before': [2.0, 'NaN']}
    >>> to_dict(BackwardFnFired(4, 0.5, 1, 2, 1j, -0.0))["grad"]
    {'re': 0.0, 'im': 1.0}
    """
    out = {"kind": event.kind}
    out.update(zip(event._fields, event))
    for name in _OPTIONAL.get(event.__class__, ()):  # optional fields: written only when known
        if out[name] is None:
            del out[name]
    for name in _CHECKED[event.__class__]:
        value = out[name]
        if value.__class__ is float:
            if value - value != 0.0:  # only NaN and ±inf fail this
                out[name] = json_number(value)
        elif value.__class__ is tuple:
            if value:
                total = sum(value)  # a float unless an item is NaN, ±inf, complex or not a float
                if total.__class__ is not float or total - total != 0.0:
                    out[name] = [json_number(v) for v in value]
        elif value.__class__ is complex:
            out[name] = json_number(value)
    return out


_CHECKS = {cls: tuple((f, FIELD_CHECKS[f]) for f in cls._fields) for cls in EVENT_TYPES.values()}
_PAIRED = {BackwardStarted: ("order", "grads_before"), GradsZeroed: ("nodes", "grads_before")}
_QUICK = {cls: quick_reader(cls, _OPTIONAL.get(cls, ()), _PAIRED.get(cls)) for cls in EVENT_TYPES.values()}


def from_dict(data: Any) -> Event:
    """Rebuild an event from :func:`to_dict`'s output, checking every field's type.

    ``ValueError`` names the event kind, the field and what it holds instead; a list
    longer than ``MAX_LIST_ITEMS`` raises :class:`~.fields.LimitError`, a ValueError.

    >>> from_dict({'kind': 'grads_zeroed', 'seq': 3, 't': 0.5, 'nodes': [1], 'grads_before': ['NaN']})
    GradsZeroed(seq=3, t=0.5, nodes=(1,), grads_before=(nan,))
    >>> from_dict({'kind': 'grads_zeroed', 'seq': 3, 't': 0.5, 'nodes': 3, 'grads_before': []})
    Traceback (most recent call last):
    ValueError: grads_zeroed.nodes must be a list of node ids, got 3
    """
    if data.__class__ is not dict:
        raise ValueError(f"expected a JSON object, got {shown(data)}")
    kind = data.get("kind")
    cls = EVENT_TYPES.get(kind) if kind.__class__ is str else None
    if cls is None:
        known = ", ".join(sorted(EVENT_TYPES))
        raise ValueError(f"unknown event kind {kind[:40]!r} (known: {known})" if kind.__class__ is str
                         else f"kind must be an event kind, got {shown(kind)} (known: {known})")
    event = _QUICK[cls](data)  # a plainly valid line: built at once
    if event is not None:
        return event
    checks = _CHECKS[cls]
    absent = [name for name in _OPTIONAL.get(cls, ()) if name not in data]
    if absent:  # optional: absent means not known
        data = {**data, **dict.fromkeys(absent)}
    if len(data) != len(checks) + 1 or any(f not in data for f, _ in checks):
        _refuse_fields(kind, cls, data)
    values = []
    for field, check in checks:
        try:
            values.append(check(data[field]))
        except FieldError as wrong:
            raise ValueError(wrong.message(kind, field)) from None
        except LimitError as beyond:
            raise LimitError(f"{kind}.{field} {beyond}") from None
    event = cls(*values)
    paired = _PAIRED.get(cls)
    if paired is not None:
        ids, grads = (getattr(event, f) for f in paired)
        if len(ids) != len(grads):
            raise ValueError(f"{kind}.{paired[1]} holds {len(grads):,} numbers for the "
                             f"{len(ids):,} node ids in {kind}.{paired[0]}; they must match one to one")
    return event


def _refuse_fields(kind: str, cls: type, data: dict) -> None:
    missing = [f for f in cls._fields if f not in data]
    extra = [shown(f) for f in data if f != "kind" and f not in cls._fields]
    problems = []
    if missing:
        problems.append("missing " + ", ".join(missing))
    if extra:
        problems.append("unexpected " + ", ".join(extra[:5]) + (", ..." if len(extra) > 5 else ""))
    raise ValueError(f"{kind} event: {'; '.join(problems)}")
