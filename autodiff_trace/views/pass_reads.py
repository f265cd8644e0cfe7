"""What a pass did to the few nodes a view draws, read by built-in scans of its columns.

A view of a huge pass draws a few hundred nodes. Building the pass's per-node maps for
them (every target's writes, every node's firing number, every grad it began with)
costs more than the drawing and holds a dict entry per node; these read each column
once for just the nodes wanted.
"""

from __future__ import annotations

from array import array
from collections import deque
import weakref
from itertools import compress, filterfalse, repeat
from operator import sub
from typing import Collection, Dict, List, Optional, Sequence, Tuple

from ..core.events import GradAccumulated
from ..core.model import PassInfo, TraceModel

__all__ = ["NodeFacts", "fired_once", "last_writes_before", "outside_of", "write_rows", "rows_written_by"]


def write_rows(p: PassInfo, targets: Collection[int]) -> List[int]:
    """The rows of the pass's writes into ``targets``, in the pass's order."""
    return list(compress(range(len(p.writes)), map(targets.__contains__, p.written_targets)))


def rows_written_by(p: PassInfo, writers: Collection[int]) -> List[int]:
    """The rows of the pass's writes sent by one of ``writers``, in the pass's order."""
    writes = p.writes
    senders = writes.writers if not writes.odd else [writes.writer(row) for row in range(len(writes))]
    rows = compress(range(len(writes)), map(writers.__contains__, senders))
    return [row for row in rows if writes.writer(row) in writers]  # not the column's stand-in for None


def fired_once(p: PassInfo) -> bool:
    """Did no node fire twice in the pass? Read by id when the ids are int64s in a span
    near the pass's size, else through its map of firing numbers."""
    fired = p.fired
    if isinstance(fired, array) and fired:
        marks = _id_marks(fired)
        if marks is not None:
            return marks[1].count(1) == len(fired)
    return len(fired) == len(p.fire_number)


def _id_marks(ids: Sequence[int]) -> Optional[Tuple[int, bytearray]]:
    """``(low, marks)``: a byte per id from the lowest of ``ids`` (int64s, not empty), 1 for
    each of them; None when they lie wider apart than a few times their number."""
    low = min(ids)
    span = max(ids) - low + 1
    if span > 4 * len(ids) + 65536:
        return None
    marks = bytearray(span)
    deque(map(marks.__setitem__, map(sub, ids, repeat(low)), repeat(1)), 0)
    return low, marks


_OUTSIDE: "weakref.WeakKeyDictionary[PassInfo, tuple]" = weakref.WeakKeyDictionary()


def outside_of(p: PassInfo) -> Tuple[List[int], List[int]]:
    """The nodes that fired although the pass's root cannot reach them (each once, by
    first firing) and those written that it cannot reach (each once, by first write): one
    scan of each column, kept per pass until it grows."""
    stamp = (len(p.fired), len(p.writes))
    known = _OUTSIDE.get(p)
    if known is None or known[0] != stamp:
        reached = p.reachable.contains
        known = _OUTSIDE[p] = (stamp, list(dict.fromkeys(filterfalse(reached, p.fired))),
                               list(dict.fromkeys(filterfalse(reached, p.written_targets))))
    return known[1], known[2]


_WRITTEN: "weakref.WeakKeyDictionary[PassInfo, tuple]" = weakref.WeakKeyDictionary()


def _written_ids(p: PassInfo) -> Optional[Tuple[int, bytearray]]:
    """The targets of ``p``'s writes as one byte per id from the lowest (``(low, bytes)``);
    None when the ids are not int64s in a span near the pass's size. Kept per pass until
    it grows."""
    known = _WRITTEN.get(p)
    if known is None or known[0] != len(p.writes):
        targets = p.writes.targets
        marks = _id_marks(targets) if not p.writes.odd and targets else None
        known = _WRITTEN[p] = (len(p.writes), marks)
    return known[1]


def last_writes_before(model: TraceModel, p: PassInfo, nodes: Collection) -> Dict[int, Tuple[int, GradAccumulated]]:
    """For each of ``nodes`` an earlier pass wrote into: the latest such pass's number and
    its last write into the node. Each earlier pass is read by id, and scanned only for
    the nodes it wrote."""
    left, found = set(nodes), {}
    for q in reversed(model.passes[: model.passes.index(p)]):
        if not left:
            break
        marks = _written_ids(q)
        if marks is None:
            hits = {n for n in left if n in q.writes_to}
        else:
            low, bits = marks
            hits = {n for n in left if ((0 <= n - low < len(bits) and bits[n - low]) if n.__class__ is int
                                        else n in q.writes_to)}
        if hits:
            for row in write_rows(q, hits):
                w = q.writes[row]
                found[w.target] = q.pass_no, w
            left -= hits
    return found


class NodeFacts:
    """The writes into each wanted node (``GradAccumulated``, in order), the grad it held
    when the pass began (for those in the pass's order) and its firing numbers.

    Args:
        p: the pass.
        wanted: the nodes to read (a set).
        rows: the rows of their writes, when already known.
    """

    def __init__(self, p: PassInfo, wanted: Collection[int], rows: Optional[List[int]] = None) -> None:
        writes = p.writes
        self.writes: Dict[int, List[GradAccumulated]] = {}
        self.grads_before: Dict[int, float] = {}
        self.fires: Dict[int, List[int]] = {}
        if not wanted:
            return
        for row in write_rows(p, wanted) if rows is None else sorted(rows):
            w = writes[row]
            self.writes.setdefault(w.target, []).append(w)
        self.grads_before = p.grads_before_of(wanted)
        fired = p.fired
        for number, node in compress(enumerate(fired, 1), map(wanted.__contains__, fired)):
            self.fires.setdefault(node, []).append(number)

    def writes_to(self, node: int) -> List[GradAccumulated]:
        return self.writes.get(node, [])
