"""Chrome trace event format: a saved trace as a timeline for Perfetto or chrome://tracing.

Each backward pass is a slice on the "backward" track, each backward function's firing
a slice nested inside it (lasting until the next firing or the end of the pass), and
every gradient write, node creation, zeroing and finding an instant event whose
``args`` hold its numbers. :func:`write_chrome_trace` streams: it keeps only the
firing under way and the node names, never the events.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import IO, Dict, Iterable, Iterator, Optional, Union

from ..core.compact_runs import CompactRun, default_name
from ..core.describe import describe, grad_write, made
from ..core.tracefile import encode_line, orjson
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
    quick = _QUICK_ARGS.get(event.__class__)
    args = quick(event, names) if quick is not None else None
    return args if args is not None else _careful_args(event, names)


def _careful_args(event: Event, names: Dict[int, str]) -> dict:
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


# The common events' args, built at once when every number is a finite float (what
# to_dict leaves as it is) and every node id an int; None sends the event the careful way.

def _node_args(e: NodeCreated, names: Dict[int, str]) -> Optional[dict]:
    seq, _, node, op, value, parents, name, site, function, module, tensor = e
    if value.__class__ is not float or value - value != 0.0 or node.__class__ is not int \
            or module is not None or tensor is not None:
        return None
    node_name = names.get(node)
    return {"seq": seq, "node": node, "op": op, "value": value, "parents": parents, "name": name,
            "site": site, "function": function, "node_name": f"#{node}" if node_name is None else node_name}


def _fired_args(e: BackwardFnFired, names: Dict[int, str]) -> Optional[dict]:
    seq, _, pass_no, node, grad, upstream = e
    try:
        total = grad + upstream
    except TypeError:
        return None
    if total.__class__ is not float or total - total != 0.0 or node.__class__ is not int:
        return None
    node_name = names.get(node)
    return {"seq": seq, "pass_no": pass_no, "node": node, "grad": grad, "upstream": upstream,
            "node_name": f"#{node}" if node_name is None else node_name}


def _write_args(e: GradAccumulated, names: Dict[int, str]) -> Optional[dict]:
    seq, _, pass_no, target, fired_by, local_grad, contribution, grad_before, grad_after, replaced, site = e
    try:
        total = contribution + grad_before + grad_after + (0.0 if local_grad is None else local_grad)
    except TypeError:
        return None
    if total.__class__ is not float or total - total != 0.0 or target.__class__ is not int \
            or not (fired_by is None or fired_by.__class__ is int):
        return None
    target_name = names.get(target)
    args = {"seq": seq, "pass_no": pass_no, "target": target, "fired_by": fired_by, "local_grad": local_grad,
            "contribution": contribution, "grad_before": grad_before, "grad_after": grad_after,
            "replaced": replaced, "site": site, "target_name": f"#{target}" if target_name is None else target_name}
    if fired_by is not None:
        by_name = names.get(fired_by)
        args["fired_by_name"] = f"#{fired_by}" if by_name is None else by_name
    return args


class _Names(dict):
    """Node id -> name; a node never created is named by its id, ``#7``."""

    def __missing__(self, node) -> str:
        return f"#{node}"


_QUICK_ARGS = {NodeCreated: _node_args, BackwardFnFired: _fired_args, GradAccumulated: _write_args}


def chrome_events(events: Iterable[Union[Event, CompactRun]]) -> Iterator[dict]:
    """Yield Chrome trace events (dicts) for a stream of autodiff_trace events.

    A firing's slice is yielded when it ends (at the next firing or the pass's end), so
    after the writes it made; viewers order events by ``ts``, not by position. The stream
    may hold runs of compact lines (``iter_events(path, runs=True)``).

    >>> from autodiff_trace import Value, trace
    >>> with trace() as t:
    ...     x = Value(3.0, name="x"); y = x * x; y.backward()
    >>> [(e["ph"], e.get("cat")) for e in chrome_events(t.events) if e["ph"] != "M"]
    [('i', 'node'), ('i', 'node'), ('B', 'pass'), ('i', 'grad'), ('i', 'grad'), ('i', 'grad'), ('X', 'backward_fn'), ('E', None)]
    """
    timeline = _Timeline()
    records: list = []
    timeline.begin(records)
    yield from records
    for item in events:
        records.clear()
        if item.__class__ is CompactRun:
            timeline.run(item, records)
        else:
            timeline.event(item, records)
        yield from records
    records.clear()
    timeline.end(records)
    yield from records


class _Timeline:
    """What the records of the events read so far leave open: the node names, the firing
    under way (closed by the next), the pass under way and what each node passed on."""

    def __init__(self) -> None:
        self.names = _Names()
        self.name_of = self.names.__getitem__
        self.upstream: Dict[int, float] = {}  # node -> what its latest firing in this pass passed on
        self.open_pass: Optional[int] = None
        self.firing: Optional[Event] = None  # the backward function under way, closed by the next
        self.last_t = 0.0
        self.shared: Dict[str, str] = {}  # one copy of each name
        self.said_t, self.said_us = None, 0.0  # the last time converted and its microseconds

    def us(self, t: float) -> float:
        """``_us(t)``, remembered: events come in batches of one time."""
        if t != self.said_t or t == 0 or t.__class__ is not float:  # 0.0 and -0.0 print apart
            self.said_t, self.said_us = t, _us(t)
        return self.said_us

    def begin(self, out: list) -> None:
        for tid, label in _TRACKS.items():
            out.append({"ph": "M", "name": "thread_name", "pid": PID, "tid": tid, "args": {"name": label}})
        out.append({"ph": "M", "name": "process_name", "pid": PID, "tid": 0, "args": {"name": "autodiff_trace"}})

    def end(self, out: list) -> None:
        if self.firing is not None:
            out.append(self.firing_slice(self.last_t))
        if self.open_pass is not None:
            out.append(_end(self.open_pass, self.last_t))

    def firing_slice(self, at: float) -> dict:
        firing = self.firing
        start = self.us(firing.t)
        return {"ph": "X", "name": describe(firing, self.name_of), "cat": "backward_fn", "pid": PID,
                "tid": BACKWARD_TID, "ts": start, "dur": max(0.0, round(self.us(at) - start, 3)),
                "args": _args(firing, self.names)}

    def event(self, event: Event, out: list) -> None:
        """Append the records of one event."""
        t = event.t
        if t > self.last_t:
            self.last_t = t
        names, name_of = self.names, self.name_of
        match event:
            case NodeCreated():
                names[event.node] = self.shared.setdefault(event.name, event.name)
                out.append(_instant(describe(event, name_of), "node", FORWARD_TID, self.us(t),
                                    _args(event, names)))
            case BackwardStarted():
                if self.firing is not None:
                    out.append(self.firing_slice(t))
                    self.firing = None
                if self.open_pass is not None:  # a pass that never finished: end it where the next begins
                    out.append(_end(self.open_pass, t))
                self.open_pass = event.pass_no
                self.upstream.clear()
                out.append({"ph": "B", "name": describe(event, name_of), "cat": "pass", "pid": PID,
                            "tid": BACKWARD_TID, "ts": _us(t), "args": _args(event, names)})
            case BackwardFnFired():
                if self.firing is not None:
                    out.append(self.firing_slice(t))
                self.firing = event
                self.upstream[event.node] = event.upstream
            case GradAccumulated():
                label = describe(event, name_of, upstream=self.upstream.get(event.fired_by))
                out.append(_instant(label, "grad", BACKWARD_TID, self.us(t), _args(event, names)))
            case GradsZeroed():
                out.append(_instant(describe(event, name_of), "zero", FORWARD_TID, self.us(t),
                                    _args(event, names)))
            case BackwardFinished():
                if self.firing is not None:
                    out.append(self.firing_slice(t))
                    self.firing = None
                if self.open_pass is not None:
                    out.append(_end(self.open_pass, t))
                    self.open_pass = None
            case Diagnostic():
                out.append(_instant(describe(event, name_of), "finding", FINDINGS_TID, self.us(t),
                                    _args(event, names)))

    def run(self, run: CompactRun, out: list) -> None:
        """Append the records of a run of compact lines, read from their arrays: what
        :meth:`event` appends for each of its events. An array with a number that is not
        finite goes through :meth:`event` (its args are written the careful way)."""
        t = run.t
        if t > self.last_t:
            self.last_t = t
        ts = self.us(t)
        names, shared, upstream, sites = self.names, self.shared, self.upstream, run.sites
        setdefault, append = shared.setdefault, out.append
        seq = run.seq - 1
        for row in run.arrays:
            seq += 1
            tag = row[0]
            if tag == "g":
                n = len(row)
                _, pass_no, target, fired_by, local_grad, contribution, before = row[:7]
                after = row[7] if n > 7 else before + contribution
                replaced = n > 8 and row[8]
                total = contribution + before + after + (0.0 if local_grad is None else local_grad)
                if total - total != 0.0:
                    self.event(_new(GradAccumulated, (seq, t, pass_no, target, fired_by, local_grad, contribution,
                                                      before, after, replaced, row[9] if n > 9 else None)), out)
                    continue
                target_name = names[target]
                args = {"seq": seq, "pass_no": pass_no, "target": target, "fired_by": fired_by,
                        "local_grad": local_grad, "contribution": contribution, "grad_before": before,
                        "grad_after": after, "replaced": replaced, "site": row[9] if n > 9 else None,
                        "target_name": target_name}
                if fired_by is None:
                    by_name = None
                else:
                    by_name = args["fired_by_name"] = names[fired_by]
                append({"ph": "i", "s": "t", "name": grad_write(target_name, by_name, local_grad, contribution,
                                                                before, after, replaced, upstream.get(fired_by)),
                        "cat": "grad", "pid": PID, "tid": BACKWARD_TID, "ts": ts, "args": args})
            elif tag == "f":
                _, pass_no, node, grad = row[:4]
                firing = _new(BackwardFnFired, (seq, t, pass_no, node, grad, row[4] if len(row) > 4 else grad))
                if self.firing is not None:
                    append(self.firing_slice(t))
                self.firing = firing
                upstream[node] = firing.upstream
            else:
                _, node, op, value, parents, name, number = row
                if name is None:
                    name = default_name(op, node)
                site, function = sites[number]
                if value - value != 0.0:
                    self.event(_new(NodeCreated, (seq, t, node, op, value, tuple(parents), name, site, function,
                                                  None, None)), out)
                    continue
                names[node] = node_name = setdefault(name, name)
                append({"ph": "i", "s": "t",
                        "name": made(node_name, op, value, [names[p] for p in parents] if parents else None),
                        "cat": "node", "pid": PID, "tid": FORWARD_TID, "ts": ts,
                        "args": {"seq": seq, "node": node, "op": op, "value": value, "parents": tuple(parents),
                                 "name": name, "site": site, "function": function, "node_name": node_name}})


_new = tuple.__new__


def _instant(name: str, cat: str, tid: int, ts: float, args: dict) -> dict:
    return {"ph": "i", "s": "t", "name": name, "cat": cat, "pid": PID, "tid": tid, "ts": ts,
            "args": args}


def _end(pass_no: int, t: float) -> dict:
    return {"ph": "E", "pid": PID, "tid": BACKWARD_TID, "ts": _us(t), "args": {"pass_no": pass_no}}


_BETWEEN = b'},{"ph":'  # where one record ends and the next begins, in orjson's list


def _lines(records: list) -> bytes:
    """The records' JSON, one a line, joined by ``,\\n``: one ``orjson.dumps`` for them all
    when it can (every record starts with ``"ph"``, which no string holds unescaped, so
    each boundary is found), else ``encode_line`` one by one."""
    if orjson is not None:
        try:
            joined = orjson.dumps(records)
        except TypeError:  # a lone surrogate: encode_line writes it as json does
            joined = None
        if joined is not None:
            parts = joined[1:-1].split(_BETWEEN)  # one search: as cheap as counting them
            if len(parts) == len(records):
                return b'},\n{"ph":'.join(parts)
    return b",\n".join([encode_line(record)[:-1] for record in records])


def write_chrome_trace(events: Iterable[Event], target: Union[str, os.PathLike, IO], *,
                       metadata: Optional[dict] = None) -> int:
    """Write ``{"traceEvents": [...]}`` to ``target`` one event at a time; returns the count.

    Args:
        events: the trace (a list, or :func:`~autodiff_trace.core.tracefile.iter_events`, with
            ``runs=True`` for speed: runs of compact lines are written from their arrays).
        target: a path, or an open file: binary (UTF-8 is written) or text.
        metadata: extra top-level keys (the source trace's header, say).
    """
    if not hasattr(target, "write"):
        with open(Path(target), "wb") as file:
            return write_chrome_trace(events, file, metadata=metadata)
    mode = getattr(target, "mode", "")
    binary = isinstance(target, (io.RawIOBase, io.BufferedIOBase)) or isinstance(mode, str) and "b" in mode
    put = target.write if binary else (lambda data: target.write(data.decode()))
    put(b'{"displayTimeUnit": "ms", "traceEvents": [\n')
    count, records = 0, []
    timeline = _Timeline()
    timeline.begin(records)
    for item in events:
        if item.__class__ is CompactRun:
            timeline.run(item, records)
        else:
            timeline.event(item, records)
        if len(records) >= _LINES_PER_WRITE:
            put((b",\n" if count else b"") + _lines(records))
            count += len(records)
            records.clear()
    timeline.end(records)
    if records:
        put((b",\n" if count else b"") + _lines(records))
        count += len(records)
    put(b"\n]")
    if metadata:
        put(b', "metadata": ' + json.dumps(metadata, default=str).encode())
    put(b"}\n")
    return count
