"""Chrome trace event format: a saved trace as a timeline for Perfetto or chrome://tracing.

Each backward pass is a slice on the "backward" track, each backward function's firing
a slice nested inside it (lasting until the next firing or the end of the pass), and
every gradient write, node creation, zeroing and finding an instant event whose
``args`` hold its numbers. :func:`write_chrome_trace` streams: it keeps only the
firing under way and the node names, never the events.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Dict, Iterable, Iterator, Optional, Union

from ..core.describe import describe
from ..core.tracefile import encode_line
from ..core.events import (
    BackwardFinished, BackwardFnFired, BackwardStarted, Diagnostic, Event, GradAccumulated,
    EVENT_TYPES, GradsZeroed, NodeCreated, to_dict,
)

__all__ = ["chrome_events", "write_chrome_trace", "PID", "FORWARD_TID", "BACKWARD_TID", "FINDINGS_TID"]

PID = 1
FORWARD_TID, BACKWARD_TID, FINDINGS_TID = 1, 2, 3
_LINES_PER_WRITE = 4096  # records joined into one write
_TRACKS = {FORWARD_TID: "forward (nodes created)", BACKWARD_TID: "backward",
           FINDINGS_TID: "findings"}


def _us(seconds: float) -> float:
    """Trace seconds as the format's microseconds.

    >>> _us(0.0012345)
    1234.5
    """
    return round(seconds * 1e6, 3)


_NAMED_FIELDS = ("node", "target", "fired_by", "root")  # node ids also given by name
_LONG_FIELDS = ("order", "grads_before", "nodes")  # long tuples would swamp the viewer
_NAMED = {cls: tuple(f for f in _NAMED_FIELDS if f in cls._fields) for cls in EVENT_TYPES.values()}
_LONG = {cls: tuple(f for f in _LONG_FIELDS if f in cls._fields) for cls in EVENT_TYPES.values()}


def _args(event: Event, names: Dict[int, str]) -> dict:
    """The event's fields as JSON-safe args, with node ids also given by name."""
    args = to_dict(event)
    del args["kind"], args["t"]
    cls = event.__class__
    for field in _NAMED[cls]:
        node = args.get(field)
        if isinstance(node, int):
            args[f"{field}_name"] = names.get(node, f"#{node}")
    for field in _LONG[cls]:
        value = args.get(field)
        if isinstance(value, (tuple, list)) and len(value) > 50:
            args[field] = f"{len(value)} values (see the trace file)"
    return args


def chrome_events(events: Iterable[Event]) -> Iterator[dict]:
    """Yield Chrome trace events (dicts) for a stream of autodiff_trace events.

    A firing's slice is yielded when it ends (at the next firing or the pass's end), so
    after the writes it made; viewers order events by ``ts``, not by position.

    >>> from autodiff_trace import Value, trace
    >>> with trace() as t:
    ...     x = Value(3.0, name="x"); y = x * x; y.backward()
    >>> [(e["ph"], e.get("cat")) for e in chrome_events(t.events) if e["ph"] != "M"]
    [('i', 'node'), ('i', 'node'), ('B', 'pass'), ('i', 'grad'), ('i', 'grad'), ('i', 'grad'), ('X', 'backward_fn'), ('E', None)]
    """
    for tid, label in _TRACKS.items():
        yield {"ph": "M", "name": "thread_name", "pid": PID, "tid": tid, "args": {"name": label}}
    yield {"ph": "M", "name": "process_name", "pid": PID, "tid": 0, "args": {"name": "autodiff_trace"}}
    names: Dict[int, str] = {}
    upstream: Dict[int, float] = {}  # node -> what its latest firing in this pass passed on
    open_pass: Optional[int] = None
    firing: Optional[Event] = None  # the backward function under way, closed by the next
    last_t = 0.0

    def name_of(node: Optional[int]) -> str:
        return names.get(node, f"#{node}")

    shared: Dict[str, str] = {}  # one copy of each name
    said_at = [None, 0.0]  # the last time converted and its microseconds: events come in batches

    def us(t: float) -> float:
        if t != said_at[0] or t == 0 or t.__class__ is not float:  # 0.0 and -0.0 print apart
            said_at[0], said_at[1] = t, _us(t)
        return said_at[1]

    def close_firing(at: float) -> Iterator[dict]:
        nonlocal firing
        if firing is not None:
            yield {"ph": "X", "name": describe(firing, name_of),
                   "cat": "backward_fn", "pid": PID, "tid": BACKWARD_TID, "ts": _us(firing.t),
                   "dur": max(0.0, round(_us(at) - _us(firing.t), 3)), "args": _args(firing, names)}
            firing = None

    for event in events:
        t = event.t
        last_t = max(last_t, t)
        match event:
            case NodeCreated():
                names[event.node] = shared.setdefault(event.name, event.name)
                yield _instant(describe(event, name_of), "node", FORWARD_TID, us(t), _args(event, names))
            case BackwardStarted():
                yield from close_firing(t)
                if open_pass is not None:  # a pass that never finished: end it where the next begins
                    yield _end(open_pass, t)
                open_pass = event.pass_no
                upstream.clear()
                yield {"ph": "B", "name": describe(event, name_of), "cat": "pass", "pid": PID,
                       "tid": BACKWARD_TID, "ts": _us(t), "args": _args(event, names)}
            case BackwardFnFired():
                yield from close_firing(t)
                firing = event
                upstream[event.node] = event.upstream
            case GradAccumulated():
                label = describe(event, name_of, upstream=upstream.get(event.fired_by))
                yield _instant(label, "grad", BACKWARD_TID, us(t), _args(event, names))
            case GradsZeroed():
                yield _instant(describe(event, name_of), "zero", FORWARD_TID, us(t), _args(event, names))
            case BackwardFinished():
                yield from close_firing(t)
                if open_pass is not None:
                    yield _end(open_pass, t)
                    open_pass = None
            case Diagnostic():
                yield _instant(describe(event, name_of), "finding", FINDINGS_TID, us(t),
                               _args(event, names))
    yield from close_firing(last_t)
    if open_pass is not None:
        yield _end(open_pass, last_t)


def _instant(name: str, cat: str, tid: int, ts: float, args: dict) -> dict:
    return {"ph": "i", "s": "t", "name": name, "cat": cat, "pid": PID, "tid": tid, "ts": ts,
            "args": args}


def _end(pass_no: int, t: float) -> dict:
    return {"ph": "E", "pid": PID, "tid": BACKWARD_TID, "ts": _us(t), "args": {"pass_no": pass_no}}


def write_chrome_trace(events: Iterable[Event], target: Union[str, os.PathLike, IO[str]], *,
                       metadata: Optional[dict] = None) -> int:
    """Write ``{"traceEvents": [...]}`` to ``target`` one event at a time; returns the count.

    Args:
        events: the trace (a list, or :func:`~autodiff_trace.core.tracefile.iter_events`).
        target: a path, or an open text file.
        metadata: extra top-level keys (the source trace's header, say).
    """
    if not hasattr(target, "write"):
        with open(Path(target), "w", encoding="utf-8") as file:
            return write_chrome_trace(events, file, metadata=metadata)
    target.write('{"displayTimeUnit": "ms", "traceEvents": [\n')
    count, lines = 0, []
    for record in chrome_events(events):
        lines.append(encode_line(record)[:-1].decode())  # orjson when it can: several times faster
        if len(lines) == _LINES_PER_WRITE:
            target.write((",\n" if count else "") + ",\n".join(lines))
            count += len(lines)
            lines.clear()
    if lines:
        target.write((",\n" if count else "") + ",\n".join(lines))
        count += len(lines)
    target.write("\n]")
    if metadata:
        target.write(', "metadata": ' + json.dumps(metadata, default=str))
    target.write("}\n")
    return count
