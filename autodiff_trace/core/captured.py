"""The hot events captured as plain tuples, turned into event objects or lines a batch at a time.

While every consumer of a trace can take batches (:class:`~.stages.TakesBatches`), the
tracer appends one tuple per ``node_created``, ``backward_fn_fired`` and
``grad_accumulated`` to a list: the event's kind as a small number (:data:`NODE`,
:data:`FIRED`, :data:`WRITE`), then its fields after ``seq`` and ``t``. No event object,
dict or clock read is made per event, and a tuple of plain values is one the garbage
collector stops tracking, so a long batch does not slow every later collection. A batch goes out whole:
its events are numbered by position from ``first_seq``, and all carry one ``t``, the
time the batch went out (never earlier than the events themselves).
"""

from __future__ import annotations

from typing import Callable, List, Optional

from .events import BackwardFnFired, Event, GradAccumulated, NodeCreated
from .fields import NUMBER_FIELDS
from .tracefile import encode_event, orjson

__all__ = ["BATCH", "NODE", "FIRED", "WRITE", "CapturedBatch", "events_of", "lines_of"]

BATCH = 65_536  # events captured before they go out: bounds the memory a long pass holds
CAPTURED = (NodeCreated, BackwardFnFired, GradAccumulated)  # the kinds the tracer captures
NODE, FIRED, WRITE = range(3)  # a captured tuple's first item: its class in CAPTURED
_new = tuple.__new__


def events_of(first_seq: int, t: float, batch: List[tuple]) -> List[Event]:
    """The event objects of a captured batch.

    >>> events_of(7, 0.5, [(FIRED, 1, 3, 2.0, 2.0)])
    [BackwardFnFired(seq=7, t=0.5, pass_no=1, node=3, grad=2.0, upstream=2.0)]
    """
    classes = CAPTURED
    return [_new(classes[raw[0]], (seq, t) + raw[1:]) for seq, raw in enumerate(batch, first_seq)]


def lines_of(first_seq: int, t: float, batch: List[tuple]) -> bytes:
    """The trace-file lines of a captured batch: the same as :func:`~.tracefile.encode_event`
    gives each of its events, without making them.

    >>> lines_of(7, 0.5, [(FIRED, 1, 3, 2.0, 2.0)])
    b'{"kind":"backward_fn_fired","seq":7,"t":0.5,"pass_no":1,"node":3,"grad":2.0,"upstream":2.0}\\n'
    """
    if not batch:
        return b""
    if orjson is not None:  # one dumps for the batch, cut into lines: several times faster
        makers = _DICTS
        dicts = [makers[raw[0]](seq, t, raw) for seq, raw in enumerate(batch, first_seq)]
        if None not in dicts:
            try:
                # Between two events the text is ``},{"kind":``; inside a string every ``"``
                # is escaped, so that text is found nowhere else.
                return orjson.dumps(dicts)[1:-1].replace(b'},{"kind":', b'}\n{"kind":') + b"\n"
            except TypeError:  # a lone surrogate in a name: the careful path below
                pass
    return b"".join([encode_event(event) for event in events_of(first_seq, t, batch)])


class CapturedBatch:
    """A batch kept for ``Tracer.events``: its event objects are made only when read."""

    __slots__ = ("first_seq", "t", "batch")

    def __init__(self, first_seq: int, t: float, batch: List[tuple]) -> None:
        self.first_seq, self.t, self.batch = first_seq, t, batch

    def events(self) -> List[Event]:
        return events_of(self.first_seq, self.t, self.batch)


def _dict_maker(cls: type) -> Callable[[int, float, tuple], Optional[dict]]:
    """The JSON-ready dict of one captured event of ``cls``, or None when it needs
    :func:`~.tracefile.encode_event`'s careful path: a number that is not a finite float
    (NaN, ±inf, a complex, an int) or an optional field that is set. For the common
    event, the dict holds what :func:`~.events.to_dict` would."""
    names = cls._fields[2:]
    scalars = [f for f in names if f in NUMBER_FIELDS]
    checked = " + ".join(f"(0.0 if {f} is None else {f})" for f in scalars) or "0.0"
    optional = [f for f in names if f in cls._field_defaults]
    shown = ", ".join(f"{f!r}: {f}" for f in names if f not in optional)
    source = (f"def make(seq, t, raw):\n"
              f"    _, {', '.join(names)}, = raw\n"
              f"    try:\n"
              f"        total = {checked}\n"
              f"    except TypeError:  # a number that does not add to a float\n"
              f"        return None\n"
              f"    if total.__class__ is float and total - total == 0.0"
              f"{''.join(f' and {f} is None' for f in optional)}:\n"
              f"        return {{'kind': {cls.kind!r}, 'seq': seq, 't': t, {shown}}}\n"
              f"    return None\n")
    scope: dict = {}
    exec(compile(source, f"<batch dict of {cls.kind}>", "exec"), scope)
    return scope["make"]


_DICTS = tuple(_dict_maker(cls) for cls in CAPTURED)
