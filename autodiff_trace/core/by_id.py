"""Sets and maps keyed by node id, sized for passes of millions of nodes.

:class:`NodeSet` answers "is this node in the pass?" without a Python int per id when
the pass is big; :class:`IntsById` keeps one small number per node in an int32 slot.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections import deque
from collections.abc import Set
from itertools import repeat
from operator import getitem, setitem, sub
from typing import TYPE_CHECKING, Callable, Dict, Iterable, Iterator, List, Optional, Sequence

if TYPE_CHECKING:
    from .columns import NodeTable

__all__ = ["NodeSet", "IntsById", "IdArray"]

_SMALL_SET = 100_000  # ids above which a NodeSet stops hashing them


class NodeSet(Set):
    """The ids of a pass's nodes: a frozenset while small; when big, a range if the ids
    are consecutive, one byte per id over their range if they are dense, else a sorted
    int64 array searched by bisection. ``contains`` is the quickest membership test
    (a built-in one for a frozenset or a range), for ``map`` over many ids."""

    def __init__(self, ids: Iterable[int]) -> None:
        ids = ids if isinstance(ids, (list, tuple, array)) else list(ids)
        self._set: Optional[frozenset] = None
        self._sorted: Optional[array] = None
        self._bits: Optional[bytearray] = None  # _bits[i]: is id low + i in the set
        self._range: Optional[range] = None  # the ids, when they are consecutive
        self._low = 0
        if len(ids) <= _SMALL_SET:
            self._set = frozenset(ids)
            self.contains = self._set.__contains__
            return
        try:
            self._sorted = array("q", sorted(set(ids)))
        except (OverflowError, TypeError):
            self._set = frozenset(ids)
            self.contains = self._set.__contains__
            return
        low, high = self._sorted[0], self._sorted[-1]
        self.contains = self.__contains__
        if high - low + 1 == len(self._sorted):
            self._range = range(low, high + 1)
            self.contains = self._range.__contains__
        elif high - low < 16 * len(self._sorted):
            bits = bytearray(high - low + 1)
            for node_id in self._sorted:
                bits[node_id - low] = 1
            self._bits, self._low = bits, low

    def __contains__(self, node_id) -> bool:
        if self._range is not None:
            return node_id.__class__ is int and node_id in self._range
        bits = self._bits
        if bits is not None:
            if node_id.__class__ is not int:
                return False
            at = node_id - self._low
            return 0 <= at < len(bits) and bits[at] == 1
        if self._set is not None:
            return node_id in self._set
        if node_id.__class__ is not int:
            return False
        ids = self._sorted
        at = bisect_left(ids, node_id)
        return at < len(ids) and ids[at] == node_id

    def __iter__(self) -> Iterator[int]:
        return iter(self._set if self._set is not None else self._sorted)

    def __len__(self) -> int:
        return len(self._set if self._set is not None else self._sorted)

    def union(self, *others) -> set:
        return set(self).union(*others)

    @classmethod
    def _from_iterable(cls, it):
        return frozenset(it)


class IntsById:
    """Node id -> a small whole number (0 where none was set): one int32 slot per id while
    ids stay close to those of ``table`` (``slots[id - base]``, read directly on a hot
    path), a dict once they do not."""

    __slots__ = ("slots", "far", "table", "base")

    def __init__(self, table: Optional["NodeTable"] = None) -> None:
        self.slots = array("i")
        self.far: Optional[Dict[object, int]] = None
        self.table = table
        self.base: Optional[int] = None  # the table's first id, once something is set

    def get(self, node_id) -> int:
        if self.far is not None:
            return self.far.get(node_id, 0)
        slots = self.slots
        if node_id.__class__ is not int or not slots:
            return 0
        at = node_id - self.base
        return slots[at] if 0 <= at < len(slots) else 0

    def set(self, node_id, value: int) -> None:
        if self.far is None:
            slots = self.slots
            if self.base is None:
                if not value:
                    return  # 0 already
                self.base = self.table._base if self.table is not None else 0
            at = node_id - self.base if node_id.__class__ is int else -1
            if not value and not 0 <= at < len(slots):
                return  # 0 already
            room = 2 * max(len(slots), len(self.table) if self.table is not None else 0) + 65536
            if 0 <= at < room and -2 ** 31 <= value < 2 ** 31:
                if at >= len(slots):
                    slots.frombytes(bytes(4 * (at + 1 - len(slots))))
                slots[at] = value
                return
            self.far = {i + self.base: v for i, v in enumerate(slots) if v}
            self.slots = array("i")
        if value:
            self.far[node_id] = value
        else:
            self.far.pop(node_id, None)

    def get_many(self, ids: Sequence[int], offsets: Optional[Callable[[int], List[int]]] = None) -> List[int]:
        """:meth:`get` for each of ``ids`` (ints), read by built-in maps while they fit the
        slots; ``offsets(base)``, when given, is each id minus ``base`` (made by the caller)."""
        if self.far is None and ids:
            slots = self.slots
            if not slots:
                return [0] * len(ids)
            at = offsets(self.base) if offsets is not None else list(map(sub, ids, repeat(self.base)))
            if min(at) >= 0 and max(at) < len(slots):
                return list(map(getitem, repeat(slots), at))
        return list(map(self.get, ids))

    def set_many(self, ids: Sequence[int], value: int, offsets: Optional[Callable[[int], List[int]]] = None) -> bool:
        """:meth:`set` ``value`` (not 0) for every one of ``ids`` (ints) at once, when they all
        fit the slots as they stand; False, with nothing set, when one would not.
        ``offsets`` as for :meth:`get_many`."""
        if self.far is not None or not value or not -2 ** 31 <= value < 2 ** 31 or not ids:
            return False
        base = self.base
        if base is None:
            base = self.table._base if self.table is not None else 0
        slots = self.slots
        at = offsets(base) if offsets is not None else list(map(sub, ids, repeat(base)))
        low, high = min(at), max(at)
        if low < 0 or high >= 2 * max(len(slots), len(self.table) if self.table is not None else 0) + 65536:
            return False
        self.base = base
        if high >= len(slots):
            slots.frombytes(bytes(4 * (high + 1 - len(slots))))
        deque(map(setitem, repeat(slots), at, repeat(value)), 0)
        return True


class IdArray(array):
    """Node ids in an int64 ``array`` (8 bytes each) where a list of them used to stand: it
    compares equal to a list of the same ids, as that list did."""

    def __eq__(self, other) -> bool:
        if isinstance(other, list):
            return len(self) == len(other) and self.tolist() == other
        return array.__eq__(self, other)

    def __ne__(self, other) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]
