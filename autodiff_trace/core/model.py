"""The trace as data: events folded into nodes and passes that any sink can draw.

A sink that needs more than the current event (a picture of a pass, a ledger of
who added what) builds a :class:`TraceModel` from the stream instead of keeping
its own bookkeeping. Folding is linear in the number of events; nodes, firings and
writes are held in columns (:mod:`.columns`, :mod:`.passes`, :mod:`.write_log`).
"""

from __future__ import annotations

from itertools import filterfalse
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from .columns import DEFAULT_NAME, LEAF_OR, NodeInfo, NodeTable
from .passes import PassInfo, node_ids
from .events import (
    BackwardFinished, BackwardFnFired, BackwardStarted, Diagnostic, Event, GradAccumulated,
    GradsZeroed, NodeCreated, PassSummary,
)

__all__ = ["NodeInfo", "PassInfo", "TraceModel"]

_SLICE = 65_536  # a pass's nodes whose grads are set together


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
        self.name_uses: Dict[str, int] = {}  # name -> how many nodes have it, but those named op#id (uses)
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
        return f"{name} #{node_id}" if self.uses(name) > 1 else name

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
        nodes, name_uses = self.nodes, self.name_uses
        again = nodes.row(event.node)
        if again >= 0 and nodes.names.stored(again) is DEFAULT_NAME:  # its name is counted from now on
            name = nodes.names[again]
            name_uses[name] = name_uses.get(name, 0) + 1
        row = nodes.add(event)
        if nodes.names.stored(row) is not DEFAULT_NAME:
            name = event.name
            name_uses[name] = name_uses.get(name, 0) + 1

    def uses(self, name: str) -> int:
        """How many nodes have this name (those named ``op#id`` are counted on asking)."""
        uses = self.name_uses.get(name, 0)
        head, sep, tail = name.rpartition("#")
        if sep and tail[-1:].isdigit():
            try:
                node_id = int(tail)
            except ValueError:
                return uses
            nodes = self.nodes
            row = nodes.row(node_id)
            if row >= 0 and str(node_id) == tail and nodes.names.stored(row) is DEFAULT_NAME \
                    and LEAF_OR.get(nodes.ops[row], nodes.ops[row]) == head:
                uses += 1
        return uses

    def _started(self, event: BackwardStarted) -> None:
        p = PassInfo(event)
        self.passes.append(p)
        order, grads_before = event.order, event.grads_before
        if p.began_zeroed and holds_zeros(self.nodes, order):
            return  # every node known and at 0.0 already (a first pass): 1M ids set for nothing
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
        return node_ids([*p.order, *extra]) if extra else p.order

    def graph_of(self, p: PassInfo) -> Tuple[List[int], List[Tuple[int, int]]]:
        """The nodes to draw for a pass and the (parent, child) edges between them:
        everything the root reaches, plus whatever fired or was written outside it."""
        wanted = self.pass_nodes(p)
        seen = set(wanted)
        edges = [(parent, child) for child in wanted
                 for parent in self.node(child).parents if parent in seen]
        return wanted, edges


def holds_zeros(nodes: NodeTable, ids: Sequence) -> bool:
    """Has every node of ``ids`` a row whose grad is 0.0 already, so a pass begun from zeroed
    grads sets none? Asked of the whole table, in C (no int per id), so only of a table at
    most twice their number; False when unsure (a -0.0 held, an id unknown, ids far apart)."""
    dense, base = nodes.dense_index()
    if dense is None or nodes.odd_grads or not ids or 2 * len(ids) < len(nodes.grads) or {*map(type, ids)} != {int} \
            or min(ids) < base or max(ids) - base >= len(dense) or dense.count(0):
        return False
    grads = nodes.grads.tobytes()
    return grads == bytes(len(grads))
