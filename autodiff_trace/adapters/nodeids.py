"""Small integer ids for a user's nodes, and their numbers as floats for the event stream."""

from __future__ import annotations

import math
import weakref
from typing import Callable, Dict, Optional

__all__ = ["NodeIds", "ToolRef", "as_float", "lifetime_observed", "death_hooks"]


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
death_hooks: "weakref.WeakSet" = weakref.WeakSet()  # the ``__del__`` functions NodeIds.death_hook made: the tool's, never the script's


def lifetime_observed(node) -> bool:
    """Can the script see when ``node`` dies: does it hold weak references of its own to
    it (a weak registry) or define ``__del__``? Then the tool must not keep it alive."""
    finalizer = getattr(type(node), "__del__", None)
    if finalizer is not None and finalizer not in death_hooks:
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
        self.all_kept = False  # every node keeps its weak reference: a sweep looks live nodes up by key
        self._death_hook = None  # the one __del__ death_hook made

    def of(self, node) -> int:
        node_id = self.ids_by_key.get(id(node))
        if node_id is None:
            node_id = self._add(node)
        return node_id

    def _add(self, node) -> int:
        return self.keep(node, self.number(node))

    def number(self, node) -> int:
        """A new id for ``node``, kept by no weak reference: for a node whose class reports
        its death (:meth:`death_hook`) and that the nodes holding it lead to (the graph's
        walks find it through them; :meth:`node` and :meth:`live` do not), it spares the
        object per node the garbage collector would track; any other node is then given
        its weak reference by :meth:`keep`."""
        self.issued += 1
        node_id = self.ids_by_key[id(node)] = self.issued
        return node_id

    def keep(self, node, node_id: int) -> int:
        """Keep the weak reference (or the node, when it takes none) that gives ``node``
        back by its id and drops its id when it dies; returns the id."""
        key = id(node)
        try:
            keep = _Ref(node, self._on_death)
            keep.key = key
        except TypeError:
            keep = node
        self.keepers[node_id] = keep
        return node_id

    def death_hook(self):
        """The ``__del__`` for node classes (one for all): it drops the id of a dying node
        :meth:`number` gave one (a node kept by a weak reference goes with it); it never raises."""
        if self._death_hook is not None:
            return self._death_hook
        ids_by_key, keepers = self.ids_by_key, self.keepers

        def __del__(node) -> None:
            try:
                key = id(node)
                node_id = ids_by_key.get(key)
                if node_id is not None and node_id not in keepers:
                    del ids_by_key[key]
                    if self.on_forget is not None:
                        self.on_forget(node_id)
            except Exception:  # never into the user's script, nor a word on stderr
                pass

        death_hooks.add(__del__)
        self._death_hook = __del__
        return __del__

    def drop_unkept(self) -> None:
        """Forget the ids of the nodes kept by no weak reference: their class no longer
        reports their death (tracing stopped), so their keys could be taken by new objects."""
        keepers, ids_by_key = self.keepers, self.ids_by_key
        while True:  # a collection while copying may run weakref callbacks that remove entries
            try:
                keys = list(ids_by_key)  # ints: no object per entry for the collector
                break
            except RuntimeError:  # "dictionary changed size during iteration": copy again
                continue
        for key in keys:
            if ids_by_key.get(key, 0) not in keepers:
                ids_by_key.pop(key, None)

    def keeper(self, node):
        """What stands for ``node`` without keeping it alive (a weak reference; the node
        itself when it takes none): :meth:`kept` gives the node back, or None once it died."""
        return self.keepers[self.of(node)]

    @staticmethod
    def kept(keeper):
        """The node a :meth:`keeper` stands for, or None once it died."""
        return keeper() if isinstance(keeper, _Ref) else keeper

    def node(self, node_id: int):
        """The node with this id, or None once it died, or when no weak reference keeps it
        (:meth:`number`; ids are never given again, so a graph is kept as ids: ints the
        garbage collector never visits)."""
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
