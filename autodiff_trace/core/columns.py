"""Compact storage for the trace model: nodes and grad writes held as columns.

A trace of millions of events cannot keep an object per event: :class:`NodeTable` and
:class:`WriteLog` keep one ``array`` slot (or one shared-string reference) per field,
and hand out the familiar records (:class:`NodeInfo`, ``GradAccumulated``) when asked.
A record whose values do not fit a column exactly (an int where a float is expected,
a NaN, an id beyond 64 bits) is kept whole beside the columns, so what comes out is
always equal to what went in.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping
from itertools import compress, repeat
from operator import eq, getitem, mul, ne, sub
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from .by_id import IntsById, NodeSet
from .events import NodeCreated
from .write_log import WriteLog, plain_floats, put_all

__all__ = ["NodeInfo", "NodeTable", "NodeSet", "WriteLog", "IntsById", "NameColumn", "DEFAULT_NAME", "put_number",
           "number_at"]

_FLOAT = float


def _plain(x) -> bool:
    """Does ``x`` survive a float column unchanged (a float that is not NaN)?"""
    return x.__class__ is _FLOAT and x == x


def put_number(column: array, odd: dict, index: int, value) -> None:
    """Store ``value`` at ``index`` of a float ``column``; one the column cannot hold
    unchanged (NaN, a complex, an int) goes to ``odd``, with NaN in its place."""
    if _plain(value):
        column[index] = value
        if odd:
            odd.pop(index, None)
    else:
        column[index] = float("nan")
        odd[index] = value


def number_at(column: array, odd: dict, index: int):
    """What :func:`put_number` stored at ``index``."""
    value = column[index]
    return odd.get(index, value) if value != value else value


class _DefaultName:
    __slots__ = ()

    def __repr__(self) -> str:
        return "DEFAULT_NAME"


DEFAULT_NAME = _DefaultName()  # held for a node named ``op#id``: rebuilt from its op and id when read
LEAF_OR = {"": "leaf"}  # an op -> what its default name begins with (``LEAF_OR.get(op, op)``)


class NameColumn(list):
    """The nodes' names by row. Most nodes are named ``op#id`` (``leaf#id`` for an op of
    ""): those hold :data:`DEFAULT_NAME` and are rebuilt from the op and id columns when
    read, so no string is kept per node; reading gives the names as they came."""

    __slots__ = ("_table",)

    def __init__(self, table: "NodeTable") -> None:
        super().__init__()
        self._table = table

    def __getitem__(self, row):
        if row.__class__ is slice:
            return [self[at] for at in range(*row.indices(len(self)))]
        name = list.__getitem__(self, row)
        if name is DEFAULT_NAME:
            table = self._table
            return f"{LEAF_OR.get(table.ops[row], table.ops[row])}#{table.ids[row]}"
        return name

    def __iter__(self) -> Iterator[str]:
        return map(self.__getitem__, range(len(self)))

    def stored(self, row: int):
        """What the column holds at ``row`` (:data:`DEFAULT_NAME` for a rebuilt name)."""
        return list.__getitem__(self, row)


class NodeInfo:
    """One node as the trace knows it; ``grad`` is its latest known gradient.

    A view of one row of a :class:`NodeTable`: it reads the table when asked, so it
    always shows the node's latest grad.
    """

    __slots__ = ("_table", "_row")

    def __init__(self, table: "NodeTable", row: int) -> None:
        self._table, self._row = table, row

    def _whole(self) -> Optional[NodeCreated]:
        return self._table.odd.get(self._row) if self._table.odd else None

    @property
    def id(self) -> int:
        whole = self._whole()
        return whole.node if whole is not None else self._table.ids[self._row]

    @property
    def name(self) -> str:
        return self._table.names[self._row]

    @property
    def op(self) -> str:
        return self._table.ops[self._row]

    @property
    def value(self) -> float:
        whole = self._whole()
        return whole.value if whole is not None else self._table.data[self._row]

    @property
    def parents(self) -> Tuple[int, ...]:
        whole = self._whole()
        if whole is not None:
            return whole.parents
        table, row = self._table, self._row
        return tuple(table.parents[table.starts[row]:table.starts[row + 1]])

    @property
    def site(self) -> Optional[str]:
        return self._table.sites[self._row]

    @property
    def function(self) -> Optional[str]:
        return self._table.functions[self._row]

    @property
    def module(self) -> Optional[str]:
        """The model part that made the node (torch), else None."""
        modules = self._table.modules
        return modules[self._row] if modules is not None else None

    @property
    def grad(self) -> float:
        return self._table.grad(self._row)

    @grad.setter
    def grad(self, value: float) -> None:
        self._table.set_grad(self._row, value)

    def __eq__(self, other) -> bool:
        return isinstance(other, NodeInfo) and other._table is self._table and other._row == self._row

    def __hash__(self) -> int:
        return hash((id(self._table), self._row))

    def __repr__(self) -> str:
        return f"NodeInfo({self.id}, {self.name!r}, op={self.op!r}, value={self.value!r}, grad={self.grad!r})"


class NodeTable(Mapping):
    """Node id -> :class:`NodeInfo`, held as columns (about 100 bytes a node)."""

    def __init__(self) -> None:
        self.ids = array("q")
        self.data = array("d")
        self.grads = array("d")
        self.starts = array("q", [0])  # parents of row r: parents[starts[r]:starts[r + 1]]
        self.parents = array("q")
        self.ops: List[str] = []
        self.names = NameColumn(self)
        self.sites: List[Optional[str]] = []
        self.functions: List[Optional[str]] = []
        self.modules: Optional[List[Optional[str]]] = None  # made at the first node with a module
        self.odd: Dict[int, NodeCreated] = {}  # row -> the whole event, when a column cannot hold it
        self.odd_grads: Dict[int, object] = {}  # row -> a grad a float column cannot hold
        self._dense = array("i")  # id - _base -> row + 1 (0: no such node), while ids stay close
        self._base = 0  # the first id stored: ids count up from about there
        self._sparse: Optional[Dict[int, int]] = None  # id -> row, once they do not
        self._shared: Dict[str, str] = {}  # one copy of each op, site, function and module text (names are
        # mostly each node's own: a map of them would cost more than it saves)
        self._leaf_ids: set = set()  # the ids of the rows of op "" among the first _leaves_read rows
        self._leaves_read = 0

    # -- the mapping -------------------------------------------------------------------
    def row(self, node_id) -> int:
        """The row of ``node_id``, or -1."""
        if self._sparse is not None:
            return self._sparse.get(node_id, -1)
        if node_id.__class__ is int and 0 <= node_id - self._base < len(self._dense):
            return self._dense[node_id - self._base] - 1
        return -1

    def dense_index(self) -> tuple:
        """``(index, base)``: the array read at ``id - base`` (row + 1, 0 for no such node), for
        walks that look up many ids; index None once ids lie too far apart (use :meth:`row`)."""
        return (self._dense if self._sparse is None else None), self._base

    def __getitem__(self, node_id) -> NodeInfo:
        row = self.row(node_id)
        if row < 0:
            raise KeyError(node_id)
        return NodeInfo(self, row)

    def get(self, node_id, default=None):
        row = self.row(node_id)
        return NodeInfo(self, row) if row >= 0 else default

    def __contains__(self, node_id) -> bool:
        return self.row(node_id) >= 0

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[int]:
        odd = self.odd
        for row, node_id in enumerate(self.ids):
            yield odd[row].node if odd and row in odd else node_id

    # -- filling -----------------------------------------------------------------------
    def _share(self, text):
        return text if text is None else self._shared.setdefault(text, text)

    def add(self, event: NodeCreated) -> int:
        """Store a node (a second ``node_created`` for one id replaces the first, in place); its row."""
        node, value = event.node, event.value
        dense = self._dense
        at = node - self._base if node.__class__ is int and self.names else -1
        if (self._sparse is None and 0 <= at < 2 * len(self.names) + 65536
                and value.__class__ is _FLOAT and value == value and self.modules is None
                and event.module is None and (at >= len(dense) or not dense[at])):
            # the common case, inline: a new node with a small id, a float value, no module
            row = len(self.names)
            parents = self.parents
            try:
                parents.extend(event.parents)
            except (OverflowError, TypeError):
                del parents[self.starts[row]:]
                return self._add(event)
            share = self._shared.setdefault
            self.ids.append(node)
            self.data.append(value)
            self.starts.append(len(parents))
            op, name, site, function = event.op, event.name, event.site, event.function
            self.ops.append(share(op, op))
            self.names.append(DEFAULT_NAME if name == f"{LEAF_OR.get(op, op)}#{node}" else name)
            self.sites.append(share(site, site))
            self.functions.append(share(function, function))
            self.grads.append(0.0)
            if at >= len(dense):
                dense.frombytes(bytes(4 * (at + 1 - len(dense))))
            dense[at] = row + 1
            return row
        return self._add(event)

    def _add(self, event: NodeCreated) -> int:
        """:meth:`add` for every case: a node made again, an odd id or value, a module."""
        row = self.row(event.node)
        if row >= 0:
            self._leaf_ids, self._leaves_read = set(), 0  # its op may change: the leaves are looked for again
            self.odd[row] = event
            self.ops[row], self.names[row] = self._share(event.op), event.name
            self.sites[row], self.functions[row] = self._share(event.site), self._share(event.function)
            if event.module is not None and self.modules is None:
                self.modules = [None] * len(self.names)
            if self.modules is not None:
                self.modules[row] = self._share(event.module)
            self.set_grad(row, 0.0)
            return row
        row = len(self.names)
        parents = event.parents
        try:
            whole = not _plain(event.value)
            self.ids.append(event.node if not whole else 0)
            self.parents.extend(parents if not whole else ())
        except (OverflowError, TypeError):
            whole = True
            del self.ids[row:]
            self.ids.append(0)
            del self.parents[self.starts[row]:]
        if whole:
            self.odd[row] = event
        self.data.append(event.value if not whole else 0.0)
        self.starts.append(len(self.parents))
        self.ops.append(self._share(event.op))
        self.names.append(event.name)
        self.sites.append(self._share(event.site))
        self.functions.append(self._share(event.function))
        if event.module is not None and self.modules is None:
            self.modules = [None] * row
        if self.modules is not None:
            self.modules.append(self._share(event.module))
        self.grads.append(0.0)
        self._index(event.node, row)
        return row

    def _index(self, node_id, row: int) -> None:
        if self._sparse is None:
            dense = self._dense
            if row == 0 and node_id.__class__ is int and node_id >= 0:
                self._base = node_id
            at = node_id - self._base if node_id.__class__ is int else -1
            if 0 <= at < 2 * len(self.names) + 65536:
                if at >= len(dense):
                    dense.frombytes(bytes(4 * (at + 1 - len(dense))))
                dense[at] = row + 1
                return
            self._sparse = {i + self._base: r - 1 for i, r in enumerate(dense) if r}
            self._dense = array("i")
        self._sparse[node_id] = row

    def column_of(self, column: list, ids: Iterable[int]) -> Iterator:
        """``column[row of id]`` for each of ``ids`` (None for an id with no row), read by
        built-in maps while ids stay small."""
        ids = ids if isinstance(ids, (list, tuple, array)) else list(ids)
        if self._sparse is None:
            dense = self._dense
            try:
                rows = array("q", map(getitem, repeat(dense), map(sub, ids, repeat(self._base))))  # row + 1
                if self._base > min(ids, default=self._base):
                    raise IndexError  # a negative place would read from the end
            except (IndexError, TypeError):
                pass
            else:
                if 0 not in rows:
                    return map(getitem, repeat(column), map(sub, rows, repeat(1)))
        return (column[row] if row >= 0 else None for row in map(self.row, ids))

    def is_parentless(self, node_id) -> bool:
        """Is the node held, with no parents and an op other than "?" (a placeholder)?"""
        info = self.get(node_id)
        return info is not None and info.op != "?" and not info.parents

    def parentless(self, ids: Sequence[int]) -> List[int]:
        """The ids among ``ids``, in order, that :meth:`is_parentless` holds true of:
        column-wise while ids are small ints (a node kept whole read alone)."""
        if self._sparse is None and ids and {*map(type, ids)} == {int}:
            dense, starts = self._dense, self.starts
            at = list(map(sub, ids, repeat(self._base)))
            if min(at) >= 0 and max(at) < len(dense):
                rows = list(map(getitem, repeat(dense), at))  # row + 1; 0: not held
                held, ends = list(compress(ids, rows)), list(filter(None, rows))
                begins = list(map(sub, ends, repeat(1)))  # the rows themselves
                no_parents = map(eq, map(getitem, repeat(starts), ends), map(getitem, repeat(starts), begins))
                real = map(ne, map(getitem, repeat(self.ops), begins), repeat("?"))
                found = compress(zip(held, begins), map(mul, no_parents, real))
                odd = self.odd  # its parents are not in the columns
                return [n for n, row in found if not (odd and row in odd and odd[row].parents)]
        return [n for n in ids if self.is_parentless(n)]

    def leaf_ids(self) -> set:
        """The ids of the nodes of op "" (leaves): a set kept by the table, to read, not to
        change. The rows added since the last call are scanned by ``list.index``, a C loop
        that mostly compares shared texts by identity."""
        ops, found, at = self.ops, self._leaf_ids, self._leaves_read - 1
        odd, ids = self.odd, self.ids
        try:
            while True:
                at = ops.index("", at + 1)
                found.add(odd[at].node if odd and at in odd else ids[at])
        except ValueError:
            pass
        self._leaves_read = len(ops)
        return found

    def parents_of(self, row: int) -> Tuple[int, ...]:
        """The parents of the node in ``row`` (what :attr:`NodeInfo.parents` reads)."""
        if self.odd and row in self.odd:
            return self.odd[row].parents
        return self.parents[self.starts[row]:self.starts[row + 1]]

    # -- grads -------------------------------------------------------------------------
    def grad(self, row: int):
        return number_at(self.grads, self.odd_grads, row)

    def set_grad(self, row: int, value) -> None:
        put_number(self.grads, self.odd_grads, row, value)

    def set_grads(self, ids: Sequence, grads: Sequence) -> bool:
        """Set the grads of known nodes (the last of an id listed twice wins), column-wise:
        False, with nothing set, unless every id has a row and every grad is a plain float."""
        if self._sparse is not None or self.odd_grads or not ids or {*map(type, ids)} != {int} \
                or not plain_floats(grads):
            return False
        dense, base = self._dense, self._base
        if min(ids) < base or max(ids) - base >= len(dense):
            return False
        rows = list(map(getitem, repeat(dense), map(sub, ids, repeat(base))))  # row + 1; 0: unknown
        if 0 in rows:
            return False
        put_all(self.grads, map(sub, rows, repeat(1)), grads)
        return True

    @property
    def has_modules(self) -> bool:
        """Did any node say which model part made it?"""
        return self.modules is not None
