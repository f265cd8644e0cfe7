"""What the pictures of one pass share: its nodes, which of them are drawn, and when
each grad write happened (see :mod:`.builder`).

An animation draws one pass many times; these are read from the pass once and kept
while the pass stays as it was, and nothing here holds a set or a dict over every
node of a big pass.
"""

from __future__ import annotations

import bisect
import itertools
import weakref
from operator import lt
from array import array
from typing import Dict, Iterable, List, Optional, Tuple

from ...core.model import PassInfo, TraceModel

__all__ = ["Group", "PassCache", "PassMembers", "cache_for", "ops_settled", "state", "write_steps", "SAMPLE"]

LOOK_AHEAD = 64  # firings searched in place for a write's writer before an index is made
SAMPLE = 20  # hidden nodes a group names (in its tooltip)
OPS_NAMED = 4  # ops a group's box names, the most common first


def write_steps(p: PassInfo) -> Iterable[int]:
    """For each write of the pass, how many backward functions had fired when it happened:
    a write belongs to the writer's first firing from the one under way on."""
    fired, writes = p.fired, p.writes
    firings: Optional[Dict[int, List[int]]] = None  # node -> its firing indexes, made if needed
    current = -1  # index into p.fired of the firing under way
    for row in range(len(writes)):
        writer = writes.writer(row)
        start = max(current, 0)
        if start < len(fired) and fired[start] == writer:
            current = start
            yield current + 1
            continue
        window = fired[start:start + LOOK_AHEAD]
        if writer in window:  # the common case: the writer is firing now or soon
            current = start + window.index(writer)
        elif writer is not None and len(fired) > start + LOOK_AHEAD:
            if firings is None:
                firings = {}
                for index, node in enumerate(fired):
                    firings.setdefault(node, []).append(index)
            ids = firings.get(writer)
            if ids:
                at = bisect.bisect_left(ids, start)
                if at < len(ids):
                    current = ids[at]
        yield current + 1


class Group:
    """Hidden nodes folded under one kept node: how many, their ops (in the order they
    were met), the first few."""

    __slots__ = ("count", "ops", "sample")

    def __init__(self) -> None:
        self.count, self.ops, self.sample = 0, {}, []

    @classmethod
    def counted(cls, count: int, ops: Dict[str, int]) -> "Group":
        """A group whose size and ops were counted before it was walked (:meth:`met`)."""
        group = cls()
        group.count, group.ops = count, dict(ops)
        return group

    def add(self, node: int, op: str) -> None:
        self.count += 1
        op = op or "leaf"
        self.ops[op] = self.ops.get(op, 0) + 1
        if len(self.sample) < SAMPLE:
            self.sample.append(node)

    def mix(self) -> List[Tuple[str, int]]:
        """The most common ops, with how many of each (ties in the order they were met)."""
        return sorted(self.ops.items(), key=lambda kv: -kv[1])[:OPS_NAMED]

    def __len__(self) -> int:
        return self.count


def ops_settled(met: Dict[str, bool], counts: Dict[str, int]) -> bool:
    """Do the ops ``met`` so far (in order) settle :meth:`Group.mix` for ops with these
    ``counts``? Only ties need the order: those among the ops named need every op of
    their count but one met, or enough to fill the names.

    >>> ops_settled({"mul": True}, {"mul": 5, "add": 5, "leaf": 1})
    True
    >>> ops_settled({"leaf": True}, {"mul": 5, "add": 5, "leaf": 1})
    False
    """
    place = 0
    for count in sorted(set(counts.values()), reverse=True):
        if place >= OPS_NAMED:
            return True
        tied = [op for op, n in counts.items() if n == count]
        if len(tied) > 1 and sum(op in met for op in tied) < min(OPS_NAMED - place, len(tied) - 1):
            return False
        place += len(tied)
    return True


class PassCache:
    """What every picture of one pass shares (its nodes, the selection, when each write
    happened), kept while the pass stays as it was: an animation's frames read it once."""

    def __init__(self, model: TraceModel, p: PassInfo) -> None:
        self.state = state(model, p)
        self.nodes = model.pass_nodes(p)
        self.selections: Dict[tuple, tuple] = {}  # (max_nodes, findings) -> (shown, groups)
        self.rows: Dict[frozenset, List[int]] = {}  # drawn nodes -> the rows of their writes
        self._steps: Optional[array] = None
        self._ordered: Optional[bool] = None

    def write_steps(self, p: PassInfo) -> array:
        if self._steps is None:
            self._steps = array("q", write_steps(p))
        return self._steps

    def ordered(self, writes) -> bool:
        """Do the writes' seqs only grow (so no two are the same)?"""
        if self._ordered is None:
            seqs = [writes.seq(row) for row in range(len(writes))] if writes.odd else writes.seqs
            self._ordered = all(map(lt, seqs, itertools.islice(seqs, 1, None)))
        return self._ordered


_CACHES: "weakref.WeakKeyDictionary[PassInfo, PassCache]" = weakref.WeakKeyDictionary()


def state(model: TraceModel, p: PassInfo) -> tuple:
    return (model.events, len(model.nodes), len(p.writes), len(p.fired), len(p.diagnostics), p.finished)


def cache_for(model: TraceModel, p: PassInfo) -> PassCache:
    cache = _CACHES.get(p)
    if cache is None or cache.state != state(model, p):
        cache = _CACHES[p] = PassCache(model, p)
    return cache


class PassMembers:
    """Membership in a pass's nodes without a set of all of them: reachable, or one of the few others.
    ``contains`` is the quickest test (a built-in one when nothing is outside the graph)."""

    def __init__(self, p: PassInfo, nodes) -> None:
        self.reachable = p.reachable
        self.others = set(nodes[len(p.order):])
        self.contains = self.__contains__ if self.others else self.reachable.contains

    def __contains__(self, node) -> bool:
        return node in self.reachable or node in self.others
