"""One backward pass as the trace model holds it: what it meant to visit, what fired, every grad written.

:class:`PassInfo` keeps a pass in columns (node ids in int64 arrays, grads in float64
arrays, a pass begun from zeroed grads as a count), and makes its per-node lookups on
first use.
"""

from __future__ import annotations

import struct
from array import array
from collections import abc
from itertools import compress, filterfalse, repeat
from operator import ne
from typing import Dict, Iterable, Iterator, List, Optional, Sequence

from .by_id import IdArray, NodeSet
from .columns import WriteLog
from .events import BackwardStarted, Diagnostic
from .write_log import packed

__all__ = ["PassInfo", "WritesOf", "node_ids"]


def node_ids(values) -> "array | tuple":
    """Node ids as an int64 array (8 bytes each), or as they came if they do not fit one."""
    if not hasattr(values, "__len__"):  # an iterator: read once, here
        values = tuple(values)
    try:
        return array("q", packed("q", values))  # quicker than array("q", values), which parses each id
    except (struct.error, TypeError):
        return tuple(values)


class _Zeros:
    """``len`` grads of 0.0, held as a count: a pass begun from zeroed grads keeps no column."""

    __slots__ = ("_len",)

    def __init__(self, count: int) -> None:
        self._len = count

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[float]:
        return repeat(0.0, self._len)

    def __getitem__(self, index):
        if index.__class__ is slice:
            return [0.0] * len(range(*index.indices(self._len)))
        if not -self._len <= index < self._len:
            raise IndexError("grad index out of range")
        return 0.0


def _floats(values: Sequence) -> "array | _Zeros | Sequence":
    """Grads as a float64 array, as a count when all are 0.0, or as they came if not all floats."""
    if not {*map(type, values)} <= {float}:
        return values
    data = packed("d", values)
    return _Zeros(len(values)) if data == bytes(len(data)) else array("d", data)


class WritesOf(abc.Sequence):
    """One target's writes in a pass so far (``GradAccumulated``, in order), each made when
    read: counting them or reading the first makes no others. Equal to a list of the same
    writes, as the list it stands for."""

    __slots__ = ("_log", "_rows")

    def __init__(self, log: WriteLog, rows: List[int]) -> None:
        self._log, self._rows = log, rows

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index):
        if index.__class__ is slice:
            return [self._log[row] for row in self._rows[index]]
        return self._log[self._rows[index]]

    def __eq__(self, other) -> bool:
        if isinstance(other, (list, tuple, WritesOf)):
            return len(self) == len(other) and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(list(self))


class _WritesTo(abc.Mapping):
    """Target -> its writes in this pass (``GradAccumulated``, in order), targets in the
    order of their first write. The index is made on first use, then kept up to date."""

    def __init__(self, log: WriteLog) -> None:
        self._log = log
        self._rows: Optional[Dict[int, List[int]]] = None

    def _index(self) -> Dict[int, List[int]]:
        if self._rows is None:
            rows: Dict[int, List[int]] = {}
            log = self._log
            for row in range(len(log)):
                rows.setdefault(log.target(row), []).append(row)
            self._rows = rows
        return self._rows

    @property
    def indexed(self) -> bool:
        """Is the index made (and so kept up to date write by write)?"""
        return self._rows is not None

    def added(self, target: int, row: int) -> None:
        if self._rows is not None:
            self._rows.setdefault(target, []).append(row)

    def __getitem__(self, target) -> "WritesOf":
        return WritesOf(self._log, self._index()[target][:])

    def __contains__(self, target) -> bool:
        return target in self._index()

    def __iter__(self) -> Iterator[int]:
        return iter(self._index())

    def __len__(self) -> int:
        return len(self._index())


class PassInfo:
    """One backward pass: what it meant to visit, what fired, and every grad written.

    Held as columns (``order``, ``fired``, ``writes``); the per-node lookups
    (``grads_before``, ``fire_number``, ``upstream``, ``writes_to``, ``reachable``) are
    made on first use, so a view that draws a few nodes of a huge pass never pays for them.
    """

    def __init__(self, event: BackwardStarted) -> None:
        self.pass_no = event.pass_no
        self.root = event.root
        self.seed = event.seed
        self.order = node_ids(event.order)
        self._grads_before = _floats(event.grads_before)
        self.fired: "IdArray | list" = IdArray("q")  # node ids, in firing order (a list once one is not an int64)
        self._upstreams: "array | list" = array("d")  # what each firing passed on, aligned with fired
        self.writes = WriteLog(event.pass_no)
        self.writes_to = _WritesTo(self.writes)
        self.diagnostics: List[Diagnostic] = []
        self.finished = False
        self.duration: Optional[float] = None
        self._reachable: Optional[NodeSet] = None
        self._grads_before_map: Optional[Dict[int, float]] = None
        self._fire_number: Optional[Dict[int, int]] = None
        self._upstream: Optional[Dict[int, float]] = None

    @property
    def reachable(self) -> NodeSet:
        """The nodes the root reaches (``order`` as a set)."""
        if self._reachable is None:
            self._reachable = NodeSet(self.order)
        return self._reachable

    @property
    def began_zeroed(self) -> bool:
        """Did every node of the pass hold a grad of 0.0 when it began (so none was stale)?"""
        return self._grads_before.__class__ is _Zeros

    @property
    def grads_before(self) -> Dict[int, float]:
        """Node -> the grad it held when the pass began."""
        if self._grads_before_map is None:
            self._grads_before_map = dict(zip(self.order, self._grads_before))
        return self._grads_before_map

    def grads_before_of(self, wanted) -> Dict[int, float]:
        """:attr:`grads_before` for the nodes in ``wanted`` only (one scan, no full map)."""
        return _only(wanted, self._grads_before_map, self.order, self._grads_before)

    @property
    def fire_number(self) -> Dict[int, int]:
        """Node id -> its 1-based firing number (first firing)."""
        if self._fire_number is None:
            numbers: Dict[int, int] = {}
            for number, node in enumerate(self.fired, 1):
                numbers.setdefault(node, number)
            self._fire_number = numbers
        return self._fire_number

    @property
    def upstream(self) -> Dict[int, float]:
        """Node id -> the gradient its latest firing passed on."""
        if self._upstream is None:
            self._upstream = dict(zip(self.fired, self._upstreams))
        return self._upstream

    def upstream_of(self, wanted) -> Dict[int, float]:
        """:attr:`upstream` for the nodes in ``wanted`` only (one scan, no full map)."""
        return _only(wanted, self._upstream, self.fired, self._upstreams)

    def fire_all(self, nodes: Sequence, upstreams: Sequence, ints: bool, floats: bool) -> None:
        """Note a run of firings at once: ``ints`` and ``floats`` say whether every node is
        an int and every upstream a float."""
        if self.fired.__class__ is IdArray and ints:
            try:
                self.fired.frombytes(packed("q", nodes))
            except struct.error:  # an id beyond 64 bits
                self.fired = [*self.fired, *nodes]
        else:
            if self.fired.__class__ is IdArray:
                self.fired = self.fired.tolist()  # kept as they came, not made ints
            self.fired.extend(nodes)
        if self._upstreams.__class__ is array and floats:
            self._upstreams.frombytes(packed("d", upstreams))
        else:
            if self._upstreams.__class__ is array:
                self._upstreams = list(self._upstreams)  # kept as they came, not made floats
            self._upstreams.extend(upstreams)

    def fire(self, node: int, upstream: float) -> None:
        """Note a firing of ``node``."""
        fired, upstreams = self.fired, self._upstreams
        if node.__class__ is int or fired.__class__ is list:
            try:
                fired.append(node)
            except OverflowError:
                fired = self.fired = [*fired, node]
        else:
            fired = self.fired = [*fired, node]  # kept as it came, not made an int
        if upstream.__class__ is not float and upstreams.__class__ is array:
            upstreams = self._upstreams = list(upstreams)  # kept as it came, not made a float
        upstreams.append(upstream)
        if self._fire_number is not None and node not in self._fire_number:
            self._fire_number[node] = len(fired)
        if self._upstream is not None:
            self._upstream[node] = upstream

    @property
    def stale(self) -> Dict[int, float]:
        """Nodes that held a non-zero grad when this pass began, with that grad."""
        found: Dict[int, float] = {}
        for n, g in zip(self.order, self._grads_before):
            if g != 0:
                found[n] = g
            elif n in found:  # the node listed again, with a zero grad: the last listing counts
                del found[n]
        return found

    def stale_candidates(self) -> Iterator[int]:
        """The nodes listed with a non-zero grad when the pass began, in order, read lazily
        (:attr:`stale` without its map: a node listed twice may come up twice)."""
        return compress(self.order, map(ne, self._grads_before, repeat(0)))

    @property
    def fired_outside(self) -> List[int]:
        """Nodes whose backward function fired although the root cannot reach them."""
        return list(filterfalse(self.reachable.contains, self.fired))

    @property
    def written_targets(self) -> Iterable[int]:
        """The target of each write, in order."""
        writes = self.writes
        return writes.targets if not writes.odd else [writes.target(row) for row in range(len(writes))]


def _only(wanted, whole: Optional[dict], keys, values) -> dict:
    """``dict(zip(keys, values))`` (the last value of a key repeated) for the keys in
    ``wanted`` only: read from ``whole``, that map, once it is built, else in one scan
    that does not build it."""
    if whole is not None:
        return {n: whole[n] for n in wanted if n in whole}
    return dict(compress(zip(keys, values), map(wanted.__contains__, keys)))
