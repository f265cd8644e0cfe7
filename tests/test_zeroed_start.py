"""A pass begun from zeroed grads over nodes the table holds at 0.0 sets no grad, and the
model reads exactly as when every grad is set: a node the trace never saw made still
gets its row, a grad left by an earlier pass or a -0.0 is set as it came."""

from __future__ import annotations

import math

from autodiff_trace.core.events import BackwardStarted, GradAccumulated, GradsZeroed, NodeCreated
from autodiff_trace.core.model import TraceModel, holds_zeros


def node(seq: int, node_id: int, op: str = "", name: str = "x") -> NodeCreated:
    return NodeCreated(seq, 0.0, node_id, op, 1.0, (), name, None, None)


def started(seq: int, order: tuple, grads: tuple, pass_no: int = 1) -> BackwardStarted:
    return BackwardStarted(seq, 0.0, pass_no, order[0], 1.0, order, grads)


def write(seq: int, target: int, after: float, pass_no: int = 1) -> GradAccumulated:
    return GradAccumulated(seq, 0.0, pass_no, target, None, 1.0, after, 0.0, after, False, None)


def grads(model: TraceModel) -> list:
    """Each node's grad with its sign: what a view reads."""
    return [(n, math.copysign(1.0, g) if g == 0.0 else g) for n in model.nodes for g in (model.nodes[n].grad,)]


class TestHoldsZeros:
    @staticmethod
    def table(count: int):
        return TraceModel.from_events([node(i, i + 1) for i in range(count)]).nodes

    def test_known_nodes_at_zero_hold_zeros(self):
        """Every id known, every grad +0.0: nothing to set."""
        assert holds_zeros(self.table(4), (4, 3, 2, 1))

    def test_unsure_tables_say_no(self):
        """An unknown id, no id, a table far larger than the ids, a grad already set or -0.0: False."""
        table = self.table(4)
        assert not holds_zeros(table, (5, 1))
        assert not holds_zeros(table, ())
        assert not holds_zeros(self.table(10), (1, 2))
        table.set_grad(2, -0.0)
        assert not holds_zeros(table, (4, 3, 2, 1))
        table.set_grad(2, 2.5)
        assert not holds_zeros(table, (4, 3, 2, 1))


class TestPassBegunZeroed:
    def test_a_first_pass_reads_zeros_as_before(self):
        """Nodes made in the trace, a pass from zeroed grads: every grad 0.0 and the pass's grads before too."""
        m = TraceModel.from_events([node(0, 1), node(1, 2), started(2, (2, 1), (0.0, 0.0))])
        assert grads(m) == [(1, 1.0), (2, 1.0)] and m.passes[0].grads_before == {2: 0.0, 1: 0.0}

    def test_a_node_never_seen_made_gets_its_row(self):
        """A pass over a node made before the trace: it is in the table afterwards, at 0.0."""
        m = TraceModel.from_events([node(0, 1), started(1, (7, 1), (0.0, 0.0))])
        assert 7 in m.nodes and m.nodes[7].grad == 0.0

    def test_grads_left_by_an_earlier_pass_are_set_back(self):
        """Zeroed outside the trace between two passes: the second begins at 0.0 for every node."""
        m = TraceModel.from_events([node(0, 1), node(1, 2), started(2, (2, 1), (0.0, 0.0)), write(3, 1, 4.0),
                                    started(4, (2, 1), (0.0, 0.0), pass_no=2)])
        assert grads(m) == [(1, 1.0), (2, 1.0)]

    def test_a_negative_zero_is_set_as_it_came(self):
        """-0.0 before the pass: the node reads -0.0."""
        m = TraceModel.from_events([node(0, 1), node(1, 2), started(2, (2, 1), (-0.0, 0.0))])
        assert grads(m) == [(1, 1.0), (2, -1.0)]

    def test_zeroing_through_the_trace_then_a_pass(self):
        """grads_zeroed then a pass from zeros: the same grads as set one by one."""
        m = TraceModel.from_events([node(0, 1), node(1, 2), started(2, (2, 1), (0.0, 0.0)), write(3, 1, 4.0),
                                    GradsZeroed(4, 0.0, (2, 1), (0.0, 4.0)), started(5, (2, 1), (0.0, 0.0), 2)])
        assert grads(m) == [(1, 1.0), (2, 1.0)] and m.passes[1].began_zeroed
