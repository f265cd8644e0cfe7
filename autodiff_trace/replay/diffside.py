"""One trace as :mod:`.tracediff` reads it: node keys, names, grads and the pass compared.

A node's key is a small integer, the same in both traces for the same (name or op with
its parents' keys, function, occurrence, epoch); everything per node is then held in
columns indexed by key or by creation row, about 70 bytes a node, so two traces of
millions of nodes compare in bounded memory.
"""

from __future__ import annotations

import os
import re
from array import array
from typing import Dict, Iterable, Iterator, List, Optional, Union

from ..core.columns import number_at, put_number
from ..core.events import Event
from ..core.tracefile import iter_events

__all__ = ["Keys", "Side", "END"]

Source = Union[str, os.PathLike, Iterable[Event]]
_AUTO = re.compile(r"#\d+$")
END = object()  # marks the end of a piece (a pass and what led up to it) in a trace's steps


class Keys:
    """The keys both traces share: (label, function, epoch) -> the key of each occurrence."""

    def __init__(self) -> None:
        self.by_label: Dict[tuple, array] = {}
        self.unknown: Dict[int, int] = {}  # id of a node never created -> its key
        self.count = 0

    def key(self, label, function, epoch, occurrence: int) -> int:
        keys = self.by_label.get((label, function, epoch))
        if keys is None:
            keys = self.by_label[(label, function, epoch)] = array("q")
        while len(keys) <= occurrence:
            keys.append(self.count)
            self.count += 1
        return keys[occurrence]

    def of_unknown(self, node) -> int:
        key = self.unknown.get(node)
        if key is None:
            key = self.unknown[node] = self.count
            self.count += 1
        return key


class _IdKeys:
    """Node id -> key: one int64 slot per id while ids stay small, else a dict."""

    def __init__(self) -> None:
        self._dense = array("q")  # id -> key + 1 (0: none)
        self._sparse: Optional[Dict[int, int]] = None

    def get(self, node) -> Optional[int]:
        if self._sparse is not None:
            return self._sparse.get(node)
        if node.__class__ is int and 0 <= node < len(self._dense):
            key = self._dense[node]
            return key - 1 if key else None
        return None

    def __setitem__(self, node, key: int) -> None:
        if self._sparse is None:
            if node.__class__ is int and 0 <= node < 2 * len(self._dense) + 65536:
                _grow(self._dense, node + 1, 0)
                self._dense[node] = key + 1
                return
            self._sparse = {i: k - 1 for i, k in enumerate(self._dense) if k}
        self._sparse[node] = key


def _grow(column: array, size: int, fill) -> None:
    if len(column) < size:
        column.extend([fill] * (size - len(column)))


class Side:
    """One trace being read: node keys, names, current grads, and the pass being compared."""

    def __init__(self, label: str, source: Source, keys: Keys, pass_no: Optional[int]):
        self.label, self.keys, self.pass_no = label, keys, pass_no
        self.path = str(source) if isinstance(source, (str, os.PathLike)) else None
        self.events = iter_events(source) if self.path else iter(source)
        self._key_of_id = _IdKeys()  # node id -> key
        self._made = array("q")  # keys in the order this trace first made them
        self._grad_order = array("q")  # keys in the order they first got a grad
        self._row_of = array("q")  # key -> its latest creation row + 1 (0: not made in this trace)
        self._names: List[str] = []  # by row
        self._sites: List[Optional[str]] = []  # by row
        self._starts = array("q", [0])  # parents of row r: _parents[_starts[r]:_starts[r + 1]]
        self._parents = array("q")  # parent keys
        self._grads = array("d")  # key -> latest grad (at the end: the final grad); NaN: see _odd
        self._odd: Dict[int, object] = {}  # key -> a grad that is not a plain float
        self._has_grad = bytearray()  # key -> a grad was set
        self._stamp = array("q")  # key -> the pass count when it last joined the compared pass
        self._shared: Dict[str, str] = {}
        self.name_count: Dict[str, int] = {}
        self.epoch, self.occurrences = 0, {}
        self.count = self.passes = 0
        self.findings: Dict[tuple, object] = {}
        self.last_pass = array("q")  # keys of the last compared pass's graph
        self.root: Optional[int] = None
        self.names = _ByKey(self, lambda row: self._names[row])
        self.sites = _ByKey(self, lambda row: self._sites[row])
        self.parents = _ByKey(self, lambda row: tuple(self._parents[self._starts[row]:self._starts[row + 1]]))
        self.grads = _Grads(self)

    # -- keys ---------------------------------------------------------------------------
    def key_of(self, node) -> Optional[int]:
        """The key of a node id (None for None; a key of its own for a node never created)."""
        if node is None:
            return None
        key = self._key_of_id.get(node)
        return key if key is not None else self.keys.of_unknown(node)

    def name(self, node: Optional[int]) -> str:
        """The node's name, with its creation line when another node has the same name."""
        if node is None:
            return "(none)"
        key = self._key_of_id.get(node)
        row = self._row(key) if key is not None else -1
        if row < 0:
            return f"#{node}"
        name, site = self._names[row], self._sites[row]
        return f"{name} ({os.path.basename(site)})" if site and self.name_count.get(name, 0) > 1 else name

    def _row(self, key: int) -> int:
        return self._row_of[key] - 1 if key < len(self._row_of) else -1

    def _make_key(self, e) -> int:
        parents = tuple(self.key_of(p) for p in e.parents)
        label = ("op", e.op, parents) if _AUTO.search(e.name) else e.name
        counter = (label, e.function)
        occurrence = self.occurrences.get(counter, 0)
        self.occurrences[counter] = occurrence + 1
        key = self.keys.key(label, e.function, self.epoch if self.pass_no is None else None, occurrence)
        row, earlier = len(self._names), self._row(key)
        site = self._shared.setdefault(e.site, e.site) if e.site else None
        if earlier < 0:  # the first node with this key names it
            self._names.append(self._shared.setdefault(e.name, e.name))
            self._sites.append(site)
            self._made.append(key)
        else:  # later ones keep that name, and give their site if they have one
            self._names.append(self._names[earlier])
            self._sites.append(site or self._sites[earlier])
        self.name_count[e.name] = self.name_count.get(e.name, 0) + 1
        try:
            self._parents.extend(parents)
        except (OverflowError, TypeError):  # a key beyond 64 bits cannot be: keys count nodes
            raise
        self._starts.append(len(self._parents))
        _grow(self._row_of, key + 1, 0)
        self._row_of[key] = row + 1
        return key

    # -- grads and the compared pass ---------------------------------------------------
    def set_grad(self, key: int, grad) -> None:
        _grow(self._grads, key + 1, 0.0)
        if len(self._has_grad) <= key:
            self._has_grad.extend(bytes(key + 1 - len(self._has_grad)))
        if not self._has_grad[key]:
            self._has_grad[key] = 1
            self._grad_order.append(key)
        put_number(self._grads, self._odd, key, grad)

    def _in_pass(self, key: int) -> bool:
        return key < len(self._stamp) and self._stamp[key] == self.passes

    def _join(self, key: int) -> None:
        _grow(self._stamp, key + 1, 0)
        self._stamp[key] = self.passes

    def sig(self, e, normal) -> Optional[tuple]:
        """What must agree for two events to count as the same step (ids replaced by keys),
        numbers passed through ``normal``."""
        signature = _SIGNATURES.get(e.kind)
        return None if signature is None else signature(self.key_of, e, normal)

    def steps(self, raw) -> Iterator[object]:
        """Yield ``(signature, event)`` for each compared event and :data:`END` after each
        piece: everything up to the end of a pass (or, with a pass number, that pass alone)."""
        open_piece = False
        in_pass = self.pass_no is None
        key_of = self.key_of
        for e in self.events:
            self.count += 1
            kind = e.kind
            if kind == "node_created":
                self._key_of_id[e.node] = self._make_key(e)
            elif kind == "diagnostic":
                if self.pass_no is None or e.pass_no == self.pass_no:
                    names = tuple(self.name(n) for n in e.nodes) or e.names
                    self.findings.setdefault((e.finding, e.severity, names), e)
                continue
            elif kind == "backward_started":
                self.passes += 1
                in_pass = self.pass_no is None or e.pass_no == self.pass_no
                if in_pass:
                    self.root = key_of(e.root)
                    self.last_pass = array("q")
                    for n, g in zip(e.order, e.grads_before):
                        key = key_of(n)
                        self._touch(key)
                        self.set_grad(key, g)
            elif kind == "grad_accumulated" and in_pass:
                target = key_of(e.target)
                self.set_grad(target, e.grad_after)
                self._touch(target)
            elif kind == "backward_fn_fired" and in_pass:
                self._touch(key_of(e.node))
            elif kind == "grads_zeroed" and self.pass_no is None:
                for n in e.nodes:
                    self.set_grad(key_of(n), 0.0)
            if in_pass:
                open_piece = True
                yield self.sig(e, raw), e
            if kind == "backward_finished":
                self.epoch += 1
                self.occurrences.clear()
                if in_pass:
                    open_piece = False
                    yield END
                if self.pass_no is not None and in_pass:
                    self._drain_findings()
                    return
                in_pass = self.pass_no is None
        if open_piece:
            yield END

    def _touch(self, key: int) -> None:
        """Add a node of the pass (reached, fired or written) to its nodes, once."""
        if not self._in_pass(key):
            self._join(key)
            self.last_pass.append(key)

    def _drain_findings(self) -> None:
        """The findings about a pass come right after its end: read them, then stop."""
        for e in self.events:
            if e.kind != "diagnostic":
                return
            if e.pass_no == self.pass_no:
                self.findings.setdefault((e.finding, e.severity, e.names), e)

    def made(self) -> array:
        """The keys of the nodes this trace made, in the order first made."""
        return self._made

    def made_here(self, key) -> bool:
        return key.__class__ is int and self._row(key) >= 0


class _ByKey:
    """key -> a node's column value (``get`` only), for the diff and its picture."""

    def __init__(self, side: Side, read) -> None:
        self._side, self._read = side, read

    def get(self, key, default=None):
        row = self._side._row(key) if key.__class__ is int else -1
        return self._read(row) if row >= 0 else default


class _Grads:
    """key -> the latest grad the trace gave the node."""

    def __init__(self, side: Side) -> None:
        self._side = side

    def __contains__(self, key) -> bool:
        has = self._side._has_grad
        return key.__class__ is int and key < len(has) and has[key] == 1

    def get(self, key, default=None):
        if key not in self:
            return default
        return number_at(self._side._grads, self._side._odd, key)

    def __getitem__(self, key):
        if key not in self:
            raise KeyError(key)
        return self.get(key)

    def keys(self) -> array:
        """Keys in the order they first got a grad."""
        return self._side._grad_order


_SIGNATURES = {  # kind -> (key of a node id, event, number normaliser) -> what two matched steps must share
    "node_created": lambda k, e, n: ("node", k(e.node), e.op, n(e.value)),
    "backward_started": lambda k, e, n: ("start", k(e.root), n(e.seed), tuple(sorted(
        ((k(node), n(g)) for node, g in zip(e.order, e.grads_before) if g != 0), key=repr))),
    "backward_fn_fired": lambda k, e, n: ("fired", k(e.node), n(e.grad), n(e.upstream)),
    "grad_accumulated": lambda k, e, n: ("write", k(e.target), k(e.fired_by), n(e.contribution),
                                         n(e.grad_before), n(e.grad_after)),
    "grads_zeroed": lambda k, e, n: ("zeroed", tuple(sorted((k(node) for node in e.nodes), key=repr))),
    "backward_finished": lambda k, e, n: ("finished", k(e.root)),
}
