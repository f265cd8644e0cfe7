"""The node table's leaf ids: the nodes of op "", found again as rows are added or a node is made again."""

from __future__ import annotations

from autodiff_trace.core.columns import NodeTable
from autodiff_trace.core.events import NodeCreated


def _made(node_id, op="", parents=(), value=1.0):
    return NodeCreated(0, 0.0, node_id, op, value, parents, f"n{node_id}", None, None, None, None)


class TestLeafIds:
    """Which nodes of the table are leaves."""

    def test_leaves_are_the_nodes_of_op_empty(self):
        """Leaves and constants are told apart by their op, not by having no parents."""
        table = NodeTable()
        for event in (_made(1), _made(2, "const"), _made(3, "mul", (1, 2)), _made(4)):
            table.add(event)
        assert table.leaf_ids() == {1, 4}

    def test_rows_added_after_a_call_are_found_by_the_next(self):
        """A leaf added after the set was asked for is in the next answer."""
        table = NodeTable()
        table.add(_made(1))
        assert table.leaf_ids() == {1}
        table.add(_made(2, "exp", (1,)))
        table.add(_made(3))
        assert table.leaf_ids() == {1, 3}

    def test_a_node_made_again_with_another_op_is_no_longer_a_leaf(self):
        """A second node_created for an id replaces its op, and the leaves follow."""
        table = NodeTable()
        table.add(_made(1))
        table.add(_made(2))
        assert table.leaf_ids() == {1, 2}
        table.add(_made(2, "exp", (1,)))
        assert table.leaf_ids() == {1}

    def test_a_leaf_kept_whole_is_found_by_its_own_id(self):
        """A leaf whose value a float column cannot hold (a NaN) is found by the id its event gave."""
        table = NodeTable()
        table.add(_made(1))
        table.add(_made(2, value=float("nan")))
        assert table.leaf_ids() == {1, 2}
