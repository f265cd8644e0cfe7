"""Hand-built event streams shared by the tests: what an engine would report, event by event."""

from __future__ import annotations

from autodiff_trace import Diagnoser, JsonlSink, Value, trace
from autodiff_trace.core.events import (
    BackwardFinished, BackwardFnFired, BackwardStarted, GradAccumulated, NodeCreated,
)

__all__ = ["Stream", "notebook_user_engine_events", "chain_events", "forgotten_zero_grad_trace"]


class Stream:
    """Builds events the way an engine adapter reports them, keeping every node's grad."""

    def __init__(self) -> None:
        self.events: list = []
        self.grads: dict = {}
        self.pass_no = self.fired = self.accumulated = 0

    def _emit(self, cls, *fields) -> None:
        self.events.append(cls(len(self.events), len(self.events) * 1e-6, *fields))

    def node(self, node, name, value, parents=(), op="", site=None):
        self.grads[node] = 0.0
        self._emit(NodeCreated, node, op, value, parents, name, site, "<module>")

    def start(self, root, order, seed=1.0):
        self.pass_no += 1
        self.fired = self.accumulated = 0
        self._emit(BackwardStarted, self.pass_no, root, seed, order, tuple(self.grads[n] for n in order))

    def fire(self, node):
        self.fired += 1
        self._emit(BackwardFnFired, self.pass_no, node, self.grads[node], self.grads[node])

    def write(self, target, by, amount, site=None, *, replaced=False, local=None):
        before = self.grads[target]
        self.accumulated += 1
        self.grads[target] = amount if replaced else before + amount
        self._emit(GradAccumulated, self.pass_no, target, by, local, amount, before,
                   self.grads[target], replaced, site)

    def finish(self, root):
        self._emit(BackwardFinished, self.pass_no, root, 0.0, self.fired, self.accumulated)


def notebook_user_engine_events() -> list:
    """The seed notebook on its own engine, reported with each write's local derivative.

    Its module-global ``order`` still holds pass 1's ``z``, whose closure fires again in
    pass 2 and adds 2 more to x (22, not 20). Sites are lines of ``notebook.py``, the
    notebook's cells with a print after each backward call.
    """
    s = Stream()
    s.node(1, "x", 5.0, site="notebook.py:1")
    s.node(2, "y", 4.0, site="notebook.py:2")
    s.node(3, "z", 10.0, (1, 1), "add", "notebook.py:3")
    s.start(root=3, order=(3, 1))
    s.write(3, None, 1.0, "notebook.py:4", replaced=True)
    s.fire(3)
    s.write(1, 3, 1.0, local=1.0)
    s.write(1, 3, 1.0, local=1.0)
    s.finish(3)
    s.node(4, "add#4", 9.0, (1, 2), "add", "notebook.py:6")
    s.node(5, "add#5", 9.0, (1, 2), "add", "notebook.py:6")
    s.node(6, "z", 81.0, (4, 5), "mul", "notebook.py:6")
    s.start(root=6, order=(6, 5, 4, 2, 1))
    s.write(6, None, 1.0, "notebook.py:7", replaced=True)
    s.fire(6)
    s.write(4, 6, 9.0, local=9.0)
    s.write(5, 6, 9.0, local=9.0)
    for add in (5, 4):
        s.fire(add)
        s.write(1, add, 9.0, local=1.0)
        s.write(2, add, 9.0, local=1.0)
    s.fire(3)  # pass 1's z, still in the global list, holding its grad of 1
    s.write(1, 3, 1.0, local=1.0)
    s.write(1, 3, 1.0, local=1.0)
    s.finish(6)
    assert (s.grads[6], s.grads[1], s.grads[2]) == (1.0, 22.0, 18.0)  # the notebook's "1 22 18"
    return s.events


def chain_events(length: int) -> list:
    """The events of one pass over a chain of ``length`` multiplications, traced."""
    with trace() as t:
        x = Value(1.0, name="x")
        for _ in range(length):
            x = x * 1.5
        x.backward()
    return t.events


def forgotten_zero_grad_trace(path, steps: int, terms: int) -> None:
    """Write to ``path`` the trace of a loop that forgets zero_grad: ``steps`` passes of a
    sum of ``terms`` auto-named products, stale-gradient findings from the second on."""
    with trace([JsonlSink(path)], analyzers=[Diagnoser()]):
        w = Value(0.5, name="w")
        for _ in range(steps):
            loss = Value(0.0, name="loss")
            for i in range(terms):
                loss = loss + w * float(i)
            loss.backward()
