"""The nodes a pass wrote grads into, as the ledger lists them, counted from the columns.

The ledger shows a few hundred rows of a pass but names how many nodes were written,
which of them got two contributions or more (branching) and which began the pass with
a grad (stale). :func:`written_targets` counts those with built-in scans of the pass's
int arrays when its ids allow it (:class:`_ByColumns`), else node by node
(:class:`_ByNode`); both say the same.
"""

from __future__ import annotations

from array import array
from collections import deque
from itertools import chain, compress, islice, repeat
from operator import ne, sub
from typing import Iterator, List, Sequence, Tuple

from ...core.events import GradAccumulated
from ...core.model import PassInfo
from ..pass_reads import NodeFacts, outside_of, write_rows

__all__ = ["WrittenTargets", "written_targets"]

_SPAN = 4  # ids spread wider than this many times the pass's size are not read by id


class WrittenTargets:
    """The targets of a pass's writes in the ledger's order (those the root reaches, in
    the pass's order, then the others by first write), how many, the branching and the
    stale ones (each as its first ``limit`` nodes and how many in all), and the writes
    and starting grad of the first ``shown``."""

    count: int
    branching: Tuple[List[int], int]
    stale: Tuple[List[int], int]
    shown: List[int]

    def __init__(self, p: PassInfo) -> None:
        self.p = p

    def _read_shown(self, shown: List[int], last=None) -> None:
        """Read the writes of the ``shown`` targets; ``last`` (by id - ``low``, the row + 1
        of each target's one write, when each was written once) spares the scan for them."""
        self.shown = shown
        rows = None if last is None else [last[n - self._low] - 1 for n in shown]
        self._facts = NodeFacts(self.p, set(shown), rows)

    def writes(self, target: int) -> List[GradAccumulated]:
        """The writes into a shown target, in order."""
        return self._facts.writes_to(target)

    def start(self, target: int) -> float:
        """The grad a shown target held when the pass began."""
        before = self._facts.grads_before
        return before[target] if target in before else self.writes(target)[0].grad_before


def _first(nodes: Iterator[int], limit: int) -> Tuple[List[int], int]:
    """The first ``limit`` of ``nodes``, and how many there are."""
    first = list(islice(nodes, limit))
    counted = deque(enumerate(nodes, len(first) + 1), maxlen=1)
    return first, counted[0][0] if counted else len(first)


class _ByNode(WrittenTargets):
    """Read through the pass's per-node maps: any ids, any order."""

    def __init__(self, p: PassInfo, shown: int, limit: int) -> None:
        super().__init__(p)
        writes_to = p.writes_to
        targets = [n for n in p.order if n in writes_to]
        targets += [n for n in writes_to if n not in p.reachable]
        self.count = len(targets)
        self.branching = _first((n for n in targets if len(writes_to[n]) >= 2), limit)
        before = p.grads_before
        self.stale = _first((n for n in targets if (before[n] if n in before else writes_to[n][0].grad_before) != 0),
                            limit)
        self._read_shown(targets[:shown])


class _ByColumns(WrittenTargets):
    """Read by id from the int arrays, every target's id lying between ``low`` and ``high``;
    one more slot, always 0, stands for any id outside them."""

    def __init__(self, p: PassInfo, shown: int, limit: int, low: int, high: int) -> None:
        super().__init__(p)
        self._low = low
        order, targets = p.order, p.writes.targets
        code = "i" if len(targets) < 2 ** 31 - 1 else "q"
        span = high - low + 1
        last = array(code, bytes(array(code).itemsize * (span + 1)))  # id - low -> last write's row + 1
        deque(map(last.__setitem__, map(sub, targets, repeat(low)), range(1, len(targets) + 1)), 0)
        self.count = len(last) - last.count(0)  # (0: a node not written)
        outside = outside_of(p)[1]

        def marked(marks, nodes: Sequence[int]) -> Iterator[int]:
            """Those of ``nodes`` whose slot is marked (any id outside the span reads the spare slot)."""
            at = map(min, map(max, map(sub, nodes, repeat(low)), repeat(-1)), repeat(span))
            return compress(nodes, map(marks.__getitem__, at))

        self.branching = [], 0
        if self.count < len(targets):  # some node was written twice: mark those
            twice = bytearray(len(last))
            again = compress(targets, map(ne, map(last.__getitem__, map(sub, targets, repeat(low))),
                                          range(1, len(targets) + 1)))
            deque(map(twice.__setitem__, map(sub, again, repeat(low)), repeat(1)), 0)
            self.branching = (list(islice(chain(marked(twice, order), marked(twice, outside)), limit)),
                              twice.count(1))
        stale = marked(last, list(p.stale_candidates()))
        if outside:
            first = {}
            for row in write_rows(p, set(outside)):
                first.setdefault(p.writes.target(row), row)
            stale = chain(stale, (n for n in outside if p.writes.befores[first[n]] != 0))
        self.stale = _first(stale, limit)
        self._read_shown(list(islice(chain(marked(last, order), outside), shown)),
                         None if self.count < len(targets) else last)


def written_targets(p: PassInfo, shown: int, limit: int) -> WrittenTargets:
    """The targets of ``p``'s writes, read by columns when every id is an int64 in a span
    near the pass's size and the pass's order lists each node once; else node by node."""
    order, writes = p.order, p.writes
    if order.__class__ is array and not writes.odd and len(p.reachable) == len(order):
        targets = writes.targets
        low, high = min(targets), max(targets)
        if high - low < _SPAN * (len(order) + len(targets)) + 65536:
            return _ByColumns(p, shown, limit, low, high)
    return _ByNode(p, shown, limit)
