"""The node table's parentless(ids): what Context.is_parentless says of each id, for many ids at once."""

from __future__ import annotations

import random

from autodiff_trace.analysis.checks.base import Context
from autodiff_trace.analysis.causes import Causes
from autodiff_trace.core.events import NodeCreated
from autodiff_trace.core.model import TraceModel


def _node(node_id, parents=(), value=1.0, op="mul"):
    return NodeCreated(0, 0.0, node_id, op if parents else "", value, tuple(parents), f"n{node_id}", None, None)


def _one_by_one(model: TraceModel, ids) -> list:
    ctx = Context(model, Causes(model.name, 10))
    return [n for n in ids if ctx.is_parentless(n)]


class TestParentless:
    def test_leaves_and_constants_of_a_graph_in_order(self):
        """Leaves (and a parentless const) come out in the order asked, each time asked."""
        model = TraceModel()
        for event in (_node(1), _node(2), _node(3, (1, 2)), _node(4, (), op="const"), _node(5, (3, 4))):
            model.handle(event)
        ids = [5, 4, 3, 2, 1, 2]
        assert model.nodes.parentless(ids) == [4, 2, 1, 2] == _one_by_one(model, ids)

    def test_unknown_ids_placeholders_and_nodes_kept_whole(self):
        """An id the table lacks is left out, as is a placeholder made for a node seen only in a
        pass; a node kept whole (an int value) is read from its event, parents or not."""
        model = TraceModel()
        for event in (_node(10), _node(11, value=2), _node(12, (10, 11), value=3), _node(13, (12,))):
            model.handle(event)
        model.node(20)  # a placeholder row, op "?"
        ids = [13, 12, 11, 10, 20, 30, 5, "x"]
        assert model.nodes.parentless(ids) == [11, 10] == _one_by_one(model, ids)
        assert model.nodes.parentless(ids[:6]) == [11, 10] == _one_by_one(model, ids[:6])

    def test_agrees_with_one_by_one_on_random_graphs(self):
        """Random graphs with odd values, repeated and missing ids: the same ids as one by one."""
        rng = random.Random(7)
        for _ in range(20):
            model = TraceModel()
            count = rng.randint(1, 60)
            for node_id in range(100, 100 + count):
                parents = rng.sample(range(100, node_id), min(node_id - 100, rng.randint(0, 2))) \
                    if rng.random() < 0.7 else []
                value = rng.choice([1.0, 2, float("nan")])
                model.handle(_node(node_id, parents, value))
            ids = [rng.randint(95, 100 + count + 5) for _ in range(rng.randint(0, 80))]
            assert model.nodes.parentless(ids) == _one_by_one(model, ids)
