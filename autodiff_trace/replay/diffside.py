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
from ..core.compact_runs import CompactRun, default_name
from ..core.events import Event
from ..core.tracefile import iter_events
from .diffkeys import SIGNATURES, IdKeys, Keys, as_read, grow

__all__ = ["Keys", "Side", "Batch", "END"]

Source = Union[str, os.PathLike, Iterable[Event]]
_AUTO = re.compile(r"#\d+$")
END = object()  # marks the end of a piece (a pass and what led up to it) in a trace's steps


class Side:
    """One trace being read: node keys, names, current grads, and the pass being compared."""

    def __init__(self, label: str, source: Source, keys: Keys, pass_no: Optional[int]):
        self.label, self.keys, self.pass_no = label, keys, pass_no
        self.path = str(source) if isinstance(source, (str, os.PathLike)) else None
        self.events = iter_events(source, runs=True) if self.path else iter(source)
        self._key_of_id = IdKeys()  # node id -> key
        self._dense = self._key_of_id.dense
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
        self._stamp = array("q")  # key -> the pass count when it last joined the compared pass (-1: never)
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
        dense = self._dense
        if node.__class__ is int and 0 <= node < len(dense):
            key = dense[node]
            if key:
                return key - 1
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
        """Key the node ``e`` creates and keep its row: name, site, parents."""
        return self._key_node(e.node, e.op, e.parents, e.name, e.site, e.function)

    def _key_node(self, node, op: str, parents, name: str, site: Optional[str], function: Optional[str]) -> int:
        """Key a node created with these fields and keep its row: name, site, parents."""
        if parents:
            dense, key_of = self._dense, self.key_of
            end = len(dense)
            parents = tuple([dense[p] - 1 if p.__class__ is int and 0 <= p < end and dense[p] else key_of(p)
                             for p in parents])
        else:
            parents = ()
        label = ("op", op, parents) if "#" in name and _AUTO.search(name) else name
        occurrences = self.occurrences
        slot = occurrences.get((label, function))
        if slot is None:  # the keys of this label's occurrences since the last pass, and how many
            column = self.keys.column(label, function, self.epoch if self.pass_no is None else None)
            slot = occurrences[(label, function)] = [column, 0]
        column, occurrence = slot
        slot[1] = occurrence + 1
        key = column[occurrence] if occurrence < len(column) else self.keys.extend(column, occurrence)
        row_of, names, sites, shared = self._row_of, self._names, self._sites, self._shared
        if key >= len(row_of):
            self._grow_keys(key)
        row, earlier = len(names), row_of[key] - 1
        if site:
            site = shared.setdefault(site, site)
        if earlier < 0:  # the first node with this key names it
            names.append(shared.setdefault(name, name))
            sites.append(site or None)
            self._made.append(key)
        else:  # later ones keep that name, and give their site if they have one
            names.append(names[earlier])
            sites.append(site or sites[earlier])
        name_count = self.name_count
        name_count[name] = name_count.get(name, 0) + 1
        if parents:
            self._parents.extend(parents)
        self._starts.append(len(self._parents))
        row_of[key] = row + 1
        dense = self._dense
        if node.__class__ is int and 0 <= node < len(dense) and not self._key_of_id.sparse:
            dense[node] = key + 1
        else:
            self._key_of_id[node] = key
        return key

    def _grow_keys(self, key: int) -> None:
        """Make room for ``key`` in every column indexed by key."""
        grow(self._row_of, key + 1, 0)
        grow(self._grads, len(self._row_of), 0.0)
        grow(self._stamp, len(self._row_of), -1)
        self._has_grad.extend(bytes(len(self._row_of) - len(self._has_grad)))

    # -- grads and the compared pass ---------------------------------------------------
    def set_grad(self, key: int, grad) -> None:
        if key >= len(self._row_of):
            self._grow_keys(key)
        if not self._has_grad[key]:
            self._has_grad[key] = 1
            self._grad_order.append(key)
        if grad.__class__ is float and grad == grad and not self._odd:
            self._grads[key] = grad
        else:
            put_number(self._grads, self._odd, key, grad)

    def sig(self, e, normal) -> Optional[tuple]:
        """What must agree for two events to count as the same step (ids replaced by keys),
        numbers passed through ``normal``."""
        signature = SIGNATURES.get(e.kind)
        return None if signature is None else signature(self.key_of, e, normal)

    def steps(self) -> Iterator[object]:
        """Yield ``(signature, event)`` for each compared event (numbers as read) and
        :data:`END` after each piece: everything up to the end of a pass (or, with a pass
        number, that pass alone)."""
        open_piece = False
        whole = self.pass_no is None
        in_pass = whole
        key_of, make_key, set_grad, touch = self.key_of, self._make_key, self.set_grad, self._touch
        dense, stamp, grads, has_grad = self._dense, self._stamp, self._grads, self._has_grad
        odd, grad_order, last_pass, passes = self._odd, self._grad_order, self.last_pass, self.passes
        count = self.count
        for e in self.events:
            if e.__class__ is CompactRun:
                count += e.count
                sigs = self._run_steps(e, in_pass)
                if sigs:
                    open_piece = True
                    yield Batch(sigs, e)
                continue
            count += 1
            kind = e.kind
            if kind == "node_created":
                key = make_key(e)
                if in_pass:
                    open_piece = True
                    yield ("node", key, e.op, e.value), e
                continue
            if kind == "grad_accumulated":  # a write an object line holds (most are in runs)
                if in_pass:
                    target, grad = key_of(e.target), e.grad_after
                    set_grad(target, grad)
                    touch(target)
                    open_piece = True
                    yield ("write", target, key_of(e.fired_by), e.contribution, e.grad_before, grad), e
                continue
            if kind == "backward_fn_fired":
                if in_pass:
                    node = key_of(e.node)
                    touch(node)
                    open_piece = True
                    yield ("fired", node, e.grad, e.upstream), e
                continue
            if kind == "diagnostic":
                if whole or e.pass_no == self.pass_no:
                    names = tuple(self.name(n) for n in e.nodes) or e.names
                    self.findings.setdefault((e.finding, e.severity, names), e)
                continue
            if kind == "backward_started":
                self.passes = passes = passes + 1
                in_pass = whole or e.pass_no == self.pass_no
                if in_pass:
                    self.root = key_of(e.root)
                    self.last_pass = last_pass = array("q")
                    for n, g in zip(e.order, e.grads_before):  # touch and set_grad, written out
                        key = dense[n] - 1 if n.__class__ is int and 0 <= n < len(dense) and dense[n] \
                            else key_of(n)
                        if key >= len(stamp):
                            self._grow_keys(key)
                        if stamp[key] != passes:
                            stamp[key] = passes
                            last_pass.append(key)
                        if not has_grad[key]:
                            has_grad[key] = 1
                            grad_order.append(key)
                        if g.__class__ is float and g == g and not odd:
                            grads[key] = g
                        else:
                            put_number(grads, odd, key, g)
            elif kind == "grads_zeroed" and whole:
                for n in e.nodes:
                    set_grad(key_of(n), 0.0)
            if in_pass:
                open_piece = True
                yield self.sig(e, as_read), e
            if kind == "backward_finished":
                self.epoch += 1
                self.occurrences.clear()
                if in_pass:
                    open_piece = False
                    yield END
                if not whole and in_pass:
                    self.count = count
                    self._drain_findings()
                    return
                in_pass = whole
        self.count = count
        if open_piece:
            yield END

    def _touch(self, key: int) -> None:
        """Add a node of the pass (reached, fired or written) to its nodes, once."""
        if key >= len(self._stamp):
            self._grow_keys(key)
        if self._stamp[key] != self.passes:
            self._stamp[key] = self.passes
            self.last_pass.append(key)

    def _run_steps(self, run: CompactRun, in_pass: bool) -> list:
        """What :meth:`steps` does for each event of a run of compact lines, read from their
        arrays: the nodes keyed, and in the compared part the grads set, the nodes touched
        and the steps' signatures as read, in order (returned)."""
        sigs: list = []
        append, sites, key_node, key_of = sigs.append, run.sites, self._key_node, self.key_of
        dense, stamp, grads, has_grad = self._dense, self._stamp, self._grads, self._has_grad
        odd, grad_order, last_pass, passes = self._odd, self._grad_order, self.last_pass, self.passes
        for row in run.arrays:
            tag = row[0]
            if tag == "n":
                _, node, op, value, parents, name, number = row
                site, function = sites[number]
                key = key_node(node, op, parents, default_name(op, node) if name is None else name, site, function)
                if in_pass:
                    append(("node", key, op, value))
                continue
            if not in_pass:
                continue
            n = row[2]  # a write's target, a firing's node
            node = dense[n] - 1 if n < len(dense) and dense[n] else key_of(n)
            if node >= len(stamp):
                self._grow_keys(node)
            if stamp[node] != passes:
                stamp[node] = passes
                last_pass.append(node)
            if tag == "f":
                append(("fired", node, row[3], row[4] if len(row) > 4 else row[3]))
                continue
            n = row[3]
            by = dense[n] - 1 if n is not None and n < len(dense) and dense[n] else key_of(n)
            contribution, before = row[5], row[6]
            grad = row[7] if len(row) > 7 else before + contribution
            if not has_grad[node]:
                has_grad[node] = 1
                grad_order.append(node)
            if grad.__class__ is float and grad == grad and not odd:
                grads[node] = grad
            else:
                put_number(grads, odd, node, grad)
            append(("write", node, by, contribution, before, grad))
        return sigs

    def _drain_findings(self) -> None:
        """The findings about a pass come right after its end: read them, then stop."""
        for e in self.events:
            if e.__class__ is CompactRun or e.kind != "diagnostic":
                return
            if e.pass_no == self.pass_no:
                self.findings.setdefault((e.finding, e.severity, e.names), e)

    def made(self) -> array:
        """The keys of the nodes this trace made, in the order first made."""
        return self._made

    def lacking(self, keys) -> List[int]:
        """Those of ``keys`` this trace did not make (whole traces) or that are not in its
        compared pass, in their order."""
        if self.pass_no is not None:
            nodes = set(self.last_pass)
            return [key for key in keys if key not in nodes]
        made, end = self._row_of, len(self._row_of)
        return [key for key in keys if not (key.__class__ is int and 0 <= key < end and made[key])]


class Batch:
    """The steps of a run of compact lines (:meth:`Side.steps`): their signatures as read,
    in order, and the run, which gives the event of each."""

    __slots__ = ("sigs", "run")

    def __init__(self, sigs: list, run: CompactRun) -> None:
        self.sigs, self.run = sigs, run


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

    def unequal(self, other: "_Grads") -> Iterator[tuple]:
        """``(key, grad here, grad there)`` for each key with a grad in both whose grads are
        not the same float, in the order the keys first got a grad here."""
        mine, theirs = self._side, other._side
        column, their_column, theirs_has = mine._grads, theirs._grads, theirs._has_grad
        for key in mine._grad_order:
            if key < len(theirs_has) and theirs_has[key] and column[key] != their_column[key]:
                yield key, number_at(column, mine._odd, key), number_at(their_column, theirs._odd, key)
