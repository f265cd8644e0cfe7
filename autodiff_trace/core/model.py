"""The trace as data: events folded into nodes and passes that any sink can draw.

A sink that needs more than the current event (a picture of a pass, a ledger of
who added what) builds a :class:`TraceModel` from the stream instead of keeping
its own bookkeeping. Folding is linear in the number of events.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Mapping
from itertools import compress, filterfalse, repeat
from operator import ne
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from .by_id import IdArray, NodeSet
from .columns import NodeInfo, NodeTable, WriteLog
from .write_log import packed
from .events import (
    BackwardFinished, BackwardFnFired, BackwardStarted, Diagnostic, Event, GradAccumulated,
    GradsZeroed, NodeCreated, PassSummary,
)

__all__ = ["NodeInfo", "PassInfo", "TraceModel"]

_SLICE = 65_536  # a pass's nodes whose grads are set together


def _ids(values) -> "array | tuple":
    """Node ids as an int64 array (8 bytes each), or as they came if they do not fit one."""
    try:
        return array("q", values)
    except (OverflowError, TypeError):
        return tuple(values)


class _WritesTo(Mapping):
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

    def __getitem__(self, target) -> List[GradAccumulated]:
        log = self._log
        return [log[row] for row in self._index()[target]]

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
        self.order = _ids(event.order)
        self._grads_before = array("d", event.grads_before) if {*map(type, event.grads_before)} <= {float} \
            else event.grads_before
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
    def grads_before(self) -> Dict[int, float]:
        """Node -> the grad it held when the pass began."""
        if self._grads_before_map is None:
            self._grads_before_map = dict(zip(self.order, self._grads_before))
        return self._grads_before_map

    def grads_before_of(self, wanted) -> Dict[int, float]:
        """:attr:`grads_before` for the nodes in ``wanted`` only (one scan, no full map)."""
        if self._grads_before_map is not None:
            return {n: g for n, g in self._grads_before_map.items() if n in wanted}
        pairs = zip(self.order, self._grads_before)
        return dict(compress(pairs, map(wanted.__contains__, self.order)))

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


class TraceModel:
    """Nodes, passes and findings of a trace, built event by event.

    >>> from autodiff_trace import Value, trace
    >>> with trace() as t:
    ...     x = Value(3.0, name="x"); y = x * x; y.backward()
    >>> m = TraceModel.from_events(t.events)
    >>> [w.contribution for w in m.passes[0].writes_to[x.id]]
    [3.0, 3.0]
    """

    def __init__(self) -> None:
        self.nodes = NodeTable()  # node id -> NodeInfo, held as columns
        self._shared: Dict[str, str] = {}  # one copy of each grad-writing site's text
        self.passes: List[PassInfo] = []
        self.diagnostics: List[Diagnostic] = []
        self.zeroed: List[GradsZeroed] = []
        self.summarised: Dict[int, PassSummary] = {}  # pass number -> its counts, when a file kept only those
        self.name_uses: Dict[str, int] = {}  # name -> how many nodes have it
        self.events = 0

    @classmethod
    def from_events(cls, events: Iterable[Event]) -> "TraceModel":
        model = cls()
        for event in events:
            model.handle(event)
        return model

    def node(self, node_id: int) -> NodeInfo:
        """The node with this id (a placeholder if the trace never saw it created)."""
        return NodeInfo(self.nodes, self._row(node_id))

    def _row(self, node_id: int) -> int:
        row = self.nodes.row(node_id)
        if row < 0:  # seen in a pass but never created in the trace (made before tracing began)
            row = self.nodes.add(NodeCreated(-1, 0.0, node_id, "?", float("nan"), (), f"#{node_id}",
                                             None, None))
        return row

    @property
    def last_pass_of(self) -> Dict[int, int]:
        """Node id -> the last pass that wrote its grad."""
        last: Dict[int, int] = {}
        for p in self.passes:
            for target in p.writes_to:
                last.pop(target, None)
                last[target] = p.pass_no
        return last

    def name(self, node_id: Optional[int]) -> str:
        """A node's name, with its id when another node shares the name (``z #3``)."""
        if node_id is None:
            return "(outside any backward function)"
        name = self.node(node_id).name
        return f"{name} #{node_id}" if self.name_uses.get(name, 0) > 1 else name

    def pass_(self, pass_no: int) -> Optional[PassInfo]:
        for p in self.passes:
            if p.pass_no == pass_no:
                return p
        return None

    @property
    def current(self) -> Optional[PassInfo]:
        """The pass under way, if one is."""
        return self.passes[-1] if self.passes and not self.passes[-1].finished else None

    def require_pass(self, pass_no: Optional[int], purpose: str = "show") -> PassInfo:
        """The pass numbered ``pass_no`` (None: the last one), or a one-line ValueError
        naming the passes the trace has; ``purpose`` says what the pass was wanted for.

        >>> TraceModel().require_pass(1, "draw")
        Traceback (most recent call last):
        ...
        ValueError: the trace has no backward pass to draw; call backward() inside the trace
        """
        if not self.passes:
            raise ValueError(f"the trace has no backward pass to {purpose}; "
                             "call backward() inside the trace")
        p = self.passes[-1] if pass_no is None else self.pass_(pass_no)
        if p is None:
            known = ", ".join(str(q.pass_no) for q in self.passes)
            if pass_no in self.summarised:
                raise ValueError(f"pass {pass_no} was kept as counts only (the run's --keep); the passes "
                                 f"kept in full are {known}: choose one, or re-run with --keep all")
            raise ValueError(f"pass {pass_no} is not in the trace (its passes: {known})")
        return p

    def handle(self, event: Event) -> None:
        """Fold one event into the model."""
        self.events += 1
        fold = self._FOLD.get(event.kind)
        if fold is not None:  # a kind this model does not fold is counted only
            fold(self, event)

    def _created(self, event: NodeCreated) -> None:
        self.nodes.add(event)
        name, name_uses = event.name, self.name_uses
        name_uses[name] = name_uses.get(name, 0) + 1

    def _started(self, event: BackwardStarted) -> None:
        self.passes.append(PassInfo(event))
        order, grads_before = event.order, event.grads_before
        for start in range(0, len(order), _SLICE):  # column-wise, a slice at a time (little memory)
            ids, grads = order[start:start + _SLICE], grads_before[start:start + _SLICE]
            if not self.nodes.set_grads(ids, grads):
                self._set_grads(ids, grads)

    def _set_grads(self, ids, grads) -> None:
        """Set the grads of nodes one by one (a node the trace never saw made gets a row)."""
        nodes = self.nodes
        column, dense, base, row = nodes.grads, nodes._dense, nodes._base, self._row
        plain = nodes._sparse is None and not nodes.odd_grads
        for node_id, grad in zip(ids, grads):
            at = node_id - base if plain and node_id.__class__ is int else -1
            if 0 <= at < len(dense) and dense[at] and grad.__class__ is float and grad == grad:
                column[dense[at] - 1] = grad  # the common case, inline
            else:
                nodes.set_grad(row(node_id), grad)
                plain = nodes._sparse is None and not nodes.odd_grads
                dense, base = nodes._dense, nodes._base

    def _fired(self, event: BackwardFnFired) -> None:
        p = self._pass_for(event.pass_no)
        if p is not None:
            p.fire(event.node, event.upstream)

    def _written(self, event: GradAccumulated) -> None:
        target, after = event.target, event.grad_after
        nodes = self.nodes
        dense = nodes._dense  # the common case inline: an id close to the others, a float grad
        at = target - nodes._base if nodes._sparse is None and target.__class__ is int else -1
        if 0 <= at < len(dense) and dense[at]:
            row = dense[at] - 1
        else:
            row = self._row(target)
        if after.__class__ is float and after == after and not nodes.odd_grads:
            nodes.grads[row] = after
        else:
            nodes.set_grad(row, after)
        passes = self.passes
        p = passes[-1] if passes and passes[-1].pass_no == event.pass_no else self.pass_(event.pass_no)
        if p is not None:
            if p.writes_to.indexed:
                p.writes_to.added(target, len(p.writes))
            p.writes.append(event, self._shared)

    def _zeroed(self, event: GradsZeroed) -> None:
        self.zeroed.append(event)
        for node_id in event.nodes:
            self.nodes.set_grad(self._row(node_id), 0.0)

    def _finished(self, event: BackwardFinished) -> None:
        p = self._pass_for(event.pass_no)
        if p is not None:
            p.finished = True
            p.duration = event.duration

    def _summarised(self, event: PassSummary) -> None:
        self.summarised[event.pass_no] = event

    def _found(self, event: Diagnostic) -> None:
        self.diagnostics.append(event)
        p = self._pass_for(event.pass_no)
        if p is not None:
            p.diagnostics.append(event)

    _FOLD = {"node_created": _created, "backward_started": _started, "backward_fn_fired": _fired,
             "grad_accumulated": _written, "grads_zeroed": _zeroed,
             "backward_finished": _finished, "diagnostic": _found, "pass_summary": _summarised}

    def _pass_for(self, pass_no: int) -> Optional[PassInfo]:
        passes = self.passes
        if passes and passes[-1].pass_no == pass_no:
            return passes[-1]  # the common case, in constant time
        return self.pass_(pass_no)

    def pass_nodes(self, p: PassInfo) -> Sequence[int]:
        """The nodes to draw for a pass: everything the root reaches (in visiting order),
        plus whatever fired or was written outside it (``p.order`` itself when nothing was)."""
        reached = p.reachable.contains
        extra = dict.fromkeys(filterfalse(reached, p.fired))
        extra.update(dict.fromkeys(filterfalse(reached, p.written_targets)))
        return _ids([*p.order, *extra]) if extra else p.order

    def graph_of(self, p: PassInfo) -> Tuple[List[int], List[Tuple[int, int]]]:
        """The nodes to draw for a pass and the (parent, child) edges between them:
        everything the root reaches, plus whatever fired or was written outside it."""
        wanted = self.pass_nodes(p)
        seen = set(wanted)
        edges = [(parent, child) for child in wanted
                 for parent in self.node(child).parents if parent in seen]
        return wanted, edges
