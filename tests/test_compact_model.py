"""The trace model's compact columns give back exactly what went in."""

from __future__ import annotations

import math

from autodiff_trace.core.events import BackwardFnFired, BackwardStarted, GradAccumulated, NodeCreated
from autodiff_trace.core.model import TraceModel


def node(seq: int, node_id: int, op: str, name: str, value: float = 1.0, parents=()) -> NodeCreated:
    return NodeCreated(seq, 0.0, node_id, op, value, tuple(parents), name, None, None)


def write(seq: int, target: int, before: float, contribution: float, after: float, t: float = 0.0,
          replaced: bool = False, site=None) -> GradAccumulated:
    return GradAccumulated(seq, t, 1, target, 2, 1.0, contribution, before, after, replaced, site)


def model_of(*events) -> TraceModel:
    return TraceModel.from_events(events)


class TestNamesAsTheyCame:
    def test_a_node_named_by_its_op_and_id_reads_back_its_name(self):
        """Names of the form op#id (leaf#id for a leaf) are rebuilt from the op and id columns."""
        m = model_of(node(0, 3, "", "leaf#3"), node(1, 4, "mul", "mul#4"), node(2, 5, "mul", "mul#9"))
        assert [m.node(i).name for i in (3, 4, 5)] == ["leaf#3", "mul#4", "mul#9"]
        assert list(m.nodes.names) == ["leaf#3", "mul#4", "mul#9"]

    def test_a_name_another_node_has_as_its_default_is_shown_with_ids(self):
        """A node the user named mul#4 shares the name of node 4 (mul#4): both show their ids."""
        m = model_of(node(0, 4, "mul", "mul#4"), node(1, 5, "add", "mul#4"))
        assert (m.name(4), m.name(5)) == ("mul#4 #4", "mul#4 #5")

    def test_a_node_made_again_keeps_the_count_of_both_names(self):
        """A second node_created for one id counts its name again, as before the columns."""
        m = model_of(node(0, 4, "mul", "mul#4"), node(1, 4, "mul", "mul#4"))
        assert m.name(4) == "mul#4 #4"

    def test_unique_names_are_shown_bare(self):
        """A name only one node has is shown without an id."""
        m = model_of(node(0, 4, "mul", "mul#4"), node(1, 5, "add", "loss"))
        assert (m.name(4), m.name(5)) == ("mul#4", "loss")


class TestWritesAsTheyCame:
    def test_grads_after_that_are_not_sums_are_kept_exactly(self):
        """Writes whose grad_after is the sum are worked out; the first that is not makes a column."""
        writes = [write(2, 1, 1.0, 2.0, 3.0, t=0.5), write(3, 1, 3.0, 1.0, 4.0, t=0.5),
                  write(4, 1, 4.0, 1.0, 7.5, t=0.75), write(5, 1, 0.0, -0.0, -0.0, t=0.75),
                  write(6, 1, 5.0, 2.0, 2.0, t=1.0, replaced=True, site="f.py:3")]
        m = model_of(node(0, 1, "", "x"), BackwardStarted(1, 0.0, 1, 1, 1.0, (1,), (0.0,)), *writes)
        got = list(m.passes[0].writes)
        assert got == writes
        assert math.copysign(1.0, got[3].grad_after) == -1.0

    def test_firings_compare_equal_to_the_list_they_were(self):
        """A pass's firings are an int64 column that still equals a list of the node ids."""
        m = model_of(node(0, 1, "", "x"), BackwardStarted(1, 0.0, 1, 1, 1.0, (1,), (0.0,)),
                     BackwardFnFired(2, 0.0, 1, 1, 1.0, 1.0))
        assert m.passes[0].fired == [1] and not m.passes[0].fired != [1]

    def test_an_id_beyond_64_bits_fires_as_it_came(self):
        """A node id too big for an int64 column keeps the firings a list."""
        big = 2 ** 70
        m = model_of(BackwardStarted(0, 0.0, 1, big, 1.0, (big,), (0.0,)), BackwardFnFired(1, 0.0, 1, big, 1.0, 1.0))
        assert m.passes[0].fired == [big]


class TestGradsBefore:
    def test_a_pass_from_zeroed_grads_reads_zeros(self):
        """A pass begun with every grad 0.0 keeps a count and reads back 0.0 for each node."""
        m = model_of(node(0, 1, "", "x"), node(1, 2, "", "y"), BackwardStarted(2, 0.0, 1, 2, 1.0, (2, 1), (0.0, 0.0)))
        p = m.passes[0]
        assert p.grads_before == {2: 0.0, 1: 0.0} and p.stale == {}

    def test_a_negative_zero_is_not_taken_for_a_zero(self):
        """-0.0 before the pass reads back as -0.0."""
        m = model_of(node(0, 1, "", "x"), BackwardStarted(1, 0.0, 1, 1, 1.0, (1,), (-0.0,)))
        assert math.copysign(1.0, m.passes[0].grads_before[1]) == -1.0
