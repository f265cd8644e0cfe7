"""The hot events captured as plain tuples, turned into event objects or lines a batch at a time.

While every consumer of a trace can take batches (:class:`~.stages.TakesBatches`), the
tracer appends one tuple per ``node_created``, ``backward_fn_fired`` and
``grad_accumulated`` to a list: the event's kind as a small number (:data:`NODE`,
:data:`FIRED`, :data:`WRITE`), then its fields after ``seq`` and ``t``. No event object,
dict or clock read is made per event, and a tuple of plain values is one the garbage
collector stops tracking, so a long batch does not slow every later collection. A batch goes out whole:
its events are numbered by position from ``first_seq``, and all carry one ``t``, that of
the event stamped before them, as their compact lines in a trace file read back (:mod:`.compact`).

A batch kept for ``Tracer.events`` (:class:`CapturedBatch`) keeps the compact lines a
trace file's sink has just made of it, when it can, instead of its tuples (about a fifth
of their memory, and read back as exactly the same events); else its tuples marshalled.
"""

from __future__ import annotations

import marshal
from typing import List, Optional

from .compact import BATCH_ARRAYS, SiteNumbers, read_compact
from .events import BackwardFnFired, Event, GradAccumulated, NodeCreated
from .tracefile import encode_event, encode_line, orjson

__all__ = ["BATCH", "CAPTURE_BATCH", "NODE", "FIRED", "WRITE", "CapturedBatch", "events_of", "lines_of",
           "events_in", "forget_lines"]

BATCH = 65_536  # lines a sink gathers before it writes: bounds the memory a long pass holds
# Events captured before they go out: fewer than the collector's threshold (700 new objects),
# so a batch is freed before the collector counts it, and tracing does not set it off again
# and again, as a long-lived batch would.
CAPTURE_BATCH = 512
CAPTURED = (NodeCreated, BackwardFnFired, GradAccumulated)  # the kinds the tracer captures
NODE, FIRED, WRITE = range(3)  # a captured tuple's first item: its class in CAPTURED
_new = tuple.__new__
_made = [None, b"", None]  # the batch lines_of last wrote whole as arrays, those lines, and their sites


def events_of(first_seq: int, t: float, batch: List[tuple]) -> List[Event]:
    """The event objects of a captured batch.

    >>> events_of(7, 0.5, [(FIRED, 1, 3, 2.0, 2.0)])
    [BackwardFnFired(seq=7, t=0.5, pass_no=1, node=3, grad=2.0, upstream=2.0)]
    """
    classes = CAPTURED
    return [_new(classes[raw[0]], (seq, t) + raw[1:]) for seq, raw in enumerate(batch, first_seq)]


def lines_of(first_seq: int, t: float, batch: List[tuple], sites: Optional[SiteNumbers] = None,
             *, numbered: bool = False) -> bytes:
    """The trace-file lines of a captured batch: compact lines (:mod:`.compact`), one
    ``orjson.dumps`` for the batch; an event that cannot be an array (a NaN, say) gets
    its object line, timed ``t``. A compact line leaves its ``seq`` out (one more than the
    line before), so the line before these must be event ``first_seq - 1``; ``numbered``
    says it is not, and the first event gets its object line. With ``sites``, nodes hold
    their site's number (the file's site lines, from ``sites.take_new()``, must go before
    these lines).

    >>> lines_of(7, 0.5, [(FIRED, 1, 3, 2.0, 2.0), (FIRED, 1, 4, 2.0, 1.0)])
    b'["f",1,3,2.0]\\n["f",1,4,2.0,1.0]\\n'
    """
    if not batch:
        return b""
    lines = BATCH_ARRAYS(batch, None if sites is None else sites.number)
    if numbered:
        lines[0] = None
    if orjson is not None and None not in lines:
        try:
            text = orjson.dumps(lines)
        except TypeError:  # a lone surrogate in a name: line by line below
            pass
        else:  # cut into lines where one array ends and the next begins; a string escapes its "
            if text.count(b'],["') == len(lines) - 1:
                text = text[1:-1].replace(b'],["', b']\n["') + b"\n"
                _made[:] = batch, text, sites  # every line an array: they stand for exactly these events
                return text
    return b"".join([encode_line(items) if items is not None
                     else encode_event(_new(CAPTURED[raw[0]], (seq, t) + raw[1:]))
                     for seq, raw, items in zip(range(first_seq, first_seq + len(batch)), batch, lines)])


class CapturedBatch:
    """A batch kept for ``Tracer.events``, without its tuples, so a long recorded run does
    not keep the collector busy; its event objects are made only when read.

    Made right after the sinks took the batch: if a trace file's sink has just written it
    as arrays only (:func:`lines_of`), it keeps those lines; else the tuples marshalled.
    """

    __slots__ = ("first_seq", "t", "batch", "packed", "lines", "sites")

    def __init__(self, first_seq: int, t: float, batch: List[tuple]) -> None:
        self.first_seq, self.t = first_seq, t
        made, lines, sites = _made
        self.batch = self.packed = self.lines = self.sites = None
        if made is batch:
            self.lines, self.sites = lines, sites
        else:
            try:
                self.packed = marshal.dumps(batch)
            except ValueError:  # a value marshal cannot write (a NumPy scalar, say): kept as it is
                self.batch = batch
        forget_lines()

    def events(self) -> List[Event]:
        if self.lines is not None:
            return events_in(self.first_seq, self.t, self.lines, self.sites)
        batch = self.batch if self.packed is None else marshal.loads(self.packed)
        return events_of(self.first_seq, self.t, batch)


def forget_lines() -> None:
    """Let go of the batch :func:`lines_of` made last (its sink closes, or it was kept)."""
    _made[:] = None, b"", None


def events_in(first_seq: int, t: float, lines: bytes, sites: Optional[SiteNumbers] = None) -> List[Event]:
    """The events of the compact lines :func:`lines_of` made of a batch (arrays only).

    >>> events_in(7, 0.5, lines_of(7, 0.5, [(FIRED, 1, 3, 2.0, 2.0)]))
    [BackwardFnFired(seq=7, t=0.5, pass_no=1, node=3, grad=2.0, upstream=2.0)]
    """
    arrays = orjson.loads(b"[" + lines[:-1].replace(b"\n", b",") + b"]")  # a string escapes its newlines
    numbers = {} if sites is None else sites.by_number()
    return [read_compact(items, t, numbers, seq) for seq, items in enumerate(arrays, first_seq)]
