"""Node keys shared by the two traces a diff reads, the map from a trace's node ids to them, and
the signature of a step in keys: what two steps must share to be the same."""

from __future__ import annotations

from array import array
from typing import Dict, Optional

__all__ = ["Keys", "IdKeys", "grow", "SIGNATURES", "NUMBERS_AT", "as_read"]


class Keys:
    """The keys both traces share: (label, function, epoch) -> the key of each occurrence."""

    def __init__(self) -> None:
        self.by_label: Dict[tuple, array] = {}
        self.unknown: Dict[int, int] = {}  # id of a node never created -> its key
        self.count = 0

    def column(self, label, function, epoch) -> array:
        """The keys of the occurrences of ``(label, function, epoch)`` so far, by occurrence."""
        keys = self.by_label.get((label, function, epoch))
        if keys is None:
            keys = self.by_label[(label, function, epoch)] = array("q")
        return keys

    def extend(self, column: array, occurrence: int) -> int:
        """The key of an occurrence not keyed yet: new keys up to it."""
        while len(column) <= occurrence:
            column.append(self.count)
            self.count += 1
        return column[occurrence]

    def of_unknown(self, node) -> int:
        key = self.unknown.get(node)
        if key is None:
            key = self.unknown[node] = self.count
            self.count += 1
        return key


class IdKeys:
    """Node id -> key: one int64 slot per id while ids stay small, a dict for the others."""

    def __init__(self) -> None:
        self.dense = array("q")  # id -> key + 1 (0: none here; look in sparse)
        self.sparse: Dict[int, int] = {}

    def get(self, node) -> Optional[int]:
        dense = self.dense
        if node.__class__ is int and 0 <= node < len(dense) and dense[node]:
            return dense[node] - 1
        return self.sparse.get(node) if self.sparse else None

    def __setitem__(self, node, key: int) -> None:
        dense = self.dense
        if node.__class__ is int and 0 <= node < 2 * len(dense) + 65536:
            if node >= len(dense):
                grow(dense, node + 1, 0)
            dense[node] = key + 1
            if self.sparse:
                self.sparse.pop(node, None)
        else:
            self.sparse[node] = key


def grow(column: array, size: int, fill) -> None:
    """Make ``column`` at least ``size`` long, by a quarter more at a time (fill: ``fill``)."""
    if len(column) < size:
        more = max(size, len(column) + (len(column) >> 2) + 4096) - len(column)
        column.extend(array(column.typecode, [fill]) * more)


def as_read(x):
    return x


SIGNATURES = {  # kind -> (key of a node id, event, number normaliser) -> what two matched steps must share
    "node_created": lambda k, e, n: ("node", k(e.node), e.op, n(e.value)),
    "backward_started": lambda k, e, n: ("start", k(e.root), n(e.seed), tuple(sorted(
        ((k(node), n(g)) for node, g in zip(e.order, e.grads_before) if g != 0), key=repr))),
    "backward_fn_fired": lambda k, e, n: ("fired", k(e.node), n(e.grad), n(e.upstream)),
    "grad_accumulated": lambda k, e, n: ("write", k(e.target), k(e.fired_by), n(e.contribution),
                                         n(e.grad_before), n(e.grad_after)),
    "grads_zeroed": lambda k, e, n: ("zeroed", tuple(sorted((k(node) for node in e.nodes), key=repr))),
    "backward_finished": lambda k, e, n: ("finished", k(e.root)),
}
NUMBERS_AT = {"node": (3,), "fired": (2, 3), "write": (3, 4, 5)}  # where those signatures hold numbers
