"""The trace as data: events folded into nodes and passes that any sink can draw.

A sink that needs more than the current event (a picture of a pass, a ledger of
who added what) builds a :class:`TraceModel` from the stream instead of keeping
its own bookkeeping. Folding is linear in the number of events.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Tuple

from .events import (
    BackwardFinished, BackwardFnFired, BackwardStarted, Diagnostic, Event, GradAccumulated,
    GradsZeroed, NodeCreated, PassSummary,
)

__all__ = ["NodeInfo", "PassInfo", "TraceModel"]


class NodeInfo:
    """One node as the trace knows it; ``grad`` is its latest known gradient."""

    __slots__ = ("id", "name", "op", "value", "parents", "site", "function", "module", "grad")

    def __init__(self, event: NodeCreated) -> None:
        self.id = event.node
        self.name = event.name
        self.op = event.op
        self.value = event.value
        self.parents = event.parents
        self.site = event.site
        self.function = event.function
        self.module = event.module  # the model part that made it (torch), else None
        self.grad = 0.0

    @classmethod
    def unknown(cls, node: int) -> "NodeInfo":
        """A node seen in a pass but never created in the trace (made before tracing began)."""
        return cls(NodeCreated(-1, 0.0, node, "?", float("nan"), (), f"#{node}", None, None))

    def __repr__(self) -> str:
        return f"NodeInfo({self.id}, {self.name!r}, op={self.op!r}, value={self.value!r}, grad={self.grad!r})"


class PassInfo:
    """One backward pass: what it meant to visit, what fired, and every grad written."""

    def __init__(self, event: BackwardStarted) -> None:
        self.pass_no = event.pass_no
        self.root = event.root
        self.seed = event.seed
        self.order = event.order
        self.reachable = frozenset(event.order)
        self.grads_before: Dict[int, float] = dict(zip(event.order, event.grads_before))
        self.fired: List[int] = []  # node ids, in firing order
        self.fire_number: Dict[int, int] = {}  # node id -> 1-based firing number (first firing)
        self.upstream: Dict[int, float] = {}  # node id -> the gradient its latest firing passed on
        self.writes: List[GradAccumulated] = []
        self.writes_to: Dict[int, List[GradAccumulated]] = {}
        self.diagnostics: List[Diagnostic] = []
        self.finished = False
        self.duration: Optional[float] = None

    @property
    def stale(self) -> Dict[int, float]:
        """Nodes that held a non-zero grad when this pass began, with that grad."""
        return {n: g for n, g in self.grads_before.items() if g != 0}

    @property
    def fired_outside(self) -> List[int]:
        """Nodes whose backward function fired although the root cannot reach them."""
        return [n for n in self.fired if n not in self.reachable]


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
        self.nodes: Dict[int, NodeInfo] = {}
        self.passes: List[PassInfo] = []
        self.diagnostics: List[Diagnostic] = []
        self.zeroed: List[GradsZeroed] = []
        self.summarised: Dict[int, PassSummary] = {}  # pass number -> its counts, when a file kept only those
        self.last_pass_of: Dict[int, int] = {}  # node id -> the last pass that wrote its grad
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
        info = self.nodes.get(node_id)
        if info is None:
            info = self.nodes[node_id] = NodeInfo.unknown(node_id)
        return info

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
        self.nodes[event.node] = NodeInfo(event)
        name_uses = self.name_uses
        name_uses[event.name] = name_uses.get(event.name, 0) + 1

    def _started(self, event: BackwardStarted) -> None:
        self.passes.append(PassInfo(event))
        for node_id, grad in zip(event.order, event.grads_before):
            self.node(node_id).grad = grad

    def _fired(self, event: BackwardFnFired) -> None:
        p = self._pass_for(event.pass_no)
        if p is not None:
            node, fired = event.node, p.fired
            fired.append(node)
            if node not in p.fire_number:
                p.fire_number[node] = len(fired)
            p.upstream[node] = event.upstream

    def _written(self, event: GradAccumulated) -> None:
        target = event.target
        info = self.nodes.get(target)
        (info if info is not None else self.node(target)).grad = event.grad_after
        p = self._pass_for(event.pass_no)
        if p is not None:
            p.writes.append(event)
            writes = p.writes_to.get(target)
            if writes is None:  # one list per target, made only for its first write
                p.writes_to[target] = [event]
            else:
                writes.append(event)
            self.last_pass_of[target] = p.pass_no

    def _zeroed(self, event: GradsZeroed) -> None:
        self.zeroed.append(event)
        for node_id in event.nodes:
            self.node(node_id).grad = 0.0

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

    def graph_of(self, p: PassInfo) -> Tuple[List[int], List[Tuple[int, int]]]:
        """The nodes to draw for a pass and the (parent, child) edges between them:
        everything the root reaches, plus whatever fired or was written outside it."""
        wanted = list(p.order)
        seen = set(wanted)
        for node_id in [*p.fired, *p.writes_to]:
            if node_id not in seen:
                seen.add(node_id)
                wanted.append(node_id)
        edges = [(parent, child) for child in wanted
                 for parent in self.node(child).parents if parent in seen]
        return wanted, edges
