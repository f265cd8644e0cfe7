"""Small integer ids for a user's nodes, and their numbers as floats for the event stream."""

from __future__ import annotations

import math
import weakref
from typing import Callable, Dict, Optional

__all__ = ["NodeIds", "ToolRef", "as_float", "lifetime_observed"]


def as_float(value) -> float:
    """A grad or value as a float (a complex stays complex) for the event stream; NaN when it is
    not a number.

    >>> as_float(2), as_float(None), as_float("x"), as_float(1 + 2j)
    (2.0, 0.0, nan, (1+2j))
    """
    if value.__class__ is float:
        return value
    if value is None:
        return 0.0
    if isinstance(value, complex):  # recorded as it is: the trace file keeps both parts
        return complex(value)
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan


class _Ref(weakref.ref):
    """A weak reference the tool holds (never the script's own)."""

    __slots__ = ("key",)


ToolRef = _Ref


def lifetime_observed(node) -> bool:
    """Can the script see when ``node`` dies: does it hold weak references of its own to
    it (a weak registry) or define ``__del__``? Then the tool must not keep it alive."""
    if getattr(type(node), "__del__", None) is not None:
        return True
    try:
        return any(not isinstance(ref, _Ref) for ref in weakref.getweakrefs(node))
    except TypeError:
        return False


class NodeIds:
    """Small integer ids for user nodes (1, 2, ... in the order they are first seen), by
    identity: user classes may define ``__eq__`` and ``__hash__`` oddly. An entry goes when its node dies; a node that takes no weak
    references (``__slots__`` without ``__weakref__``) is kept alive instead."""

    def __init__(self) -> None:
        self.issued = 0  # how many nodes have been given an id
        self.on_forget: Optional[Callable[[int], None]] = None  # told the id of a node that died
        self.ids_by_key: Dict[int, int] = {}  # id(node) -> node id
        self.keepers: Dict[int, object] = {}  # node id -> a weak reference (or the node)
        self._on_death = self._forget  # one callback for every reference, not a bound method each

    def of(self, node) -> int:
        node_id = self.ids_by_key.get(id(node))
        if node_id is None:
            node_id = self._add(node)
        return node_id

    def _add(self, node) -> int:
        key = id(node)
        self.issued += 1
        node_id = self.ids_by_key[key] = self.issued
        try:
            keep = _Ref(node, self._on_death)
            keep.key = key
        except TypeError:
            keep = node
        self.keepers[node_id] = keep
        return node_id

    def keeper(self, node):
        """What stands for ``node`` without keeping it alive (a weak reference; the node
        itself when it takes none): :meth:`kept` gives the node back, or None once it died."""
        return self.keepers[self.of(node)]

    @staticmethod
    def kept(keeper):
        """The node a :meth:`keeper` stands for, or None once it died."""
        return keeper() if isinstance(keeper, _Ref) else keeper

    def node(self, node_id: int):
        """The node with this id, or None once it died (ids are never given again, so a
        graph is kept as ids: ints the garbage collector never visits)."""
        keep = self.keepers.get(node_id)
        return keep() if keep.__class__ is _Ref else keep

    def known(self, node) -> Optional[int]:
        """The node's id if it has one, without giving it one."""
        return self.ids_by_key.get(id(node))

    def live(self):
        """``(node id, node)`` for every node with an id that is still alive."""
        while True:  # a collection while copying may run weakref callbacks that remove entries
            try:
                entries = list(self.keepers.items())
                break
            except RuntimeError:  # "dictionary changed size during iteration": copy again
                continue
        for node_id, keep in entries:
            node = keep() if isinstance(keep, _Ref) else keep
            if node is not None and node_id in self.keepers:
                yield node_id, node

    def _forget(self, ref: _Ref) -> None:
        node_id = self.ids_by_key.get(ref.key)
        if node_id is not None and self.keepers.get(node_id) is ref:
            del self.ids_by_key[ref.key], self.keepers[node_id]
            if self.on_forget is not None:
                self.on_forget(node_id)

    def __len__(self) -> int:
        return len(self.ids_by_key)
