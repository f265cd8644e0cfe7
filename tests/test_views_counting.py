"""The views count what they do not draw from the model's columns: the same counts, lines
and groups as walking every node, on passes of every shape."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from autodiff_trace import Value, trace
from autodiff_trace.core.model import TraceModel
from autodiff_trace.views.graph import selection
from autodiff_trace.views.graph.diagram import diagram
from autodiff_trace.views.graph.pass_cache import Group, ops_settled
from autodiff_trace.views.pass_reads import last_writes_before
from autodiff_trace.views.pass_shape import reach_of
from autodiff_trace.views.terminal import ledger_targets, pass_tree
from autodiff_trace.views.terminal.ledger import Ledger
from autodiff_trace.views.terminal.pass_tree import PassTree
from streams import Stream


def chain_model(length: int, passes: int = 1) -> TraceModel:
    """A chain ``y = y * w`` of ``length`` ops, backward ``passes`` times without zeroing."""
    with trace() as t:
        w = Value(0.999, name="w")
        y = w
        for _ in range(length):
            y = y * w
        for _ in range(passes):
            y.backward()
    return TraceModel.from_events(t.events)


def diamond_model(length: int) -> TraceModel:
    """``y = y * a + y``: every node used twice, so every grad gets two contributions."""
    with trace() as t:
        a = Value(0.5, name="a")
        y = Value(1.0, name="x")
        for _ in range(length):
            y = y * a + y
        y.backward()
    return TraceModel.from_events(t.events)


def outside_model() -> TraceModel:
    """A pass whose engine fires a node the root cannot reach and writes into two others."""
    s = Stream()
    s.node(1, "x", 2.0)
    s.node(2, "y", 3.0)
    s.node(3, "z", 6.0, (1, 2), "mul")
    s.node(4, "stray", 1.0)
    s.node(5, "lost", 1.0, (4,), "neg")
    s.start(3, (3, 1, 2))
    s.write(3, None, 1.0)
    s.fire(3)
    s.write(1, 3, 3.0)
    s.write(2, 3, 2.0)
    s.fire(5)
    s.write(4, 5, -1.0)
    s.write(4, 5, -1.0)
    s.finish(3)
    return TraceModel.from_events(s.events)


def partly_written_model() -> TraceModel:
    """A pass that writes into the middle of its order only: ids on both sides of the
    targets' span, one of them stale."""
    s = Stream()
    s.node(1, "a", 1.0)
    s.node(2, "b", 2.0, (1,), "neg")
    s.node(3, "c", 3.0, (2,), "neg")
    s.node(4, "d", 4.0, (3,), "neg")
    s.node(5, "e", 5.0, (4,), "neg")
    s.grads[1] = 7.0
    s.start(5, (5, 4, 3, 2, 1))
    s.fire(5)
    s.write(4, 5, -1.0)
    s.fire(4)
    s.write(3, 4, 1.0)
    s.write(3, 4, 1.0)
    s.finish(5)
    return TraceModel.from_events(s.events)


SHAPES = {"partly written": partly_written_model, "chain": lambda: chain_model(400), "stale chain": lambda: chain_model(300, passes=2),
          "diamond": lambda: diamond_model(150), "outside": outside_model}


def printed(renderable, width: int = 100) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    return console.file.getvalue()


class TestReach:
    def test_counts_each_reached_node_once_and_every_parent_link(self):
        """A chain's root reaches every node; each op lists two parents."""
        model = chain_model(50)
        reach = reach_of(model, model.passes[0])
        assert (reach.count, reach.links, reach.strays) == (51, 100, 0)

    def test_gives_up_on_a_node_the_trace_never_saw_made(self):
        """A parent with no row needs the placeholder the node-by-node walk makes."""
        s = Stream()
        s.node(2, "y", 1.0, (1,), "neg")
        s.grads[1] = 0.0  # made before the trace began: no node_created
        s.start(2, (2, 1))
        s.finish(2)
        model = TraceModel.from_events(s.events)
        assert reach_of(model, model.passes[0]) is None

    def test_counts_reached_nodes_the_order_leaves_out(self):
        """An order that misses a node the root reaches shows up as a stray."""
        s = Stream()
        s.node(1, "x", 1.0)
        s.node(2, "y", 1.0, (1,), "neg")
        s.start(2, (2,))
        s.finish(2)
        model = TraceModel.from_events(s.events)
        assert reach_of(model, model.passes[0]).strays == 1


@pytest.mark.parametrize("shape", sorted(SHAPES))
class TestCountedLikeWalked:
    def test_the_tree_counts_the_lines_the_node_by_node_walk_counts(self, shape, monkeypatch):
        """The main tree's line count from the columns equals the walk's."""
        model = SHAPES[shape]()
        counted = [PassTree(model, p.pass_no).count_lines() for p in model.passes]
        monkeypatch.setattr(pass_tree, "reach_of", lambda model, p: None)
        assert counted == [PassTree(model, p.pass_no).count_lines() for p in model.passes]

    def test_the_tree_prints_what_the_node_by_node_walk_prints(self, shape, monkeypatch):
        """Lines, references, continuations and the count of the rest are the same."""
        model = SHAPES[shape]()
        fast = [printed(PassTree(model, p.pass_no, max_lines=40), 60) for p in model.passes]
        monkeypatch.setattr(pass_tree, "reach_of", lambda model, p: None)
        assert fast == [printed(PassTree(model, p.pass_no, max_lines=40), 60) for p in model.passes]

    def test_the_ledger_reads_the_columns_as_the_per_node_maps_say(self, shape):
        """Counts, branching and stale nodes, and the rows shown agree both ways."""
        model = SHAPES[shape]()
        for p in model.passes:
            by_columns = ledger_targets.written_targets(p, 20, 3)
            by_node = ledger_targets._ByNode(p, 20, 3)
            assert isinstance(by_columns, ledger_targets._ByColumns)
            for field in ("count", "branching", "stale", "shown"):
                assert getattr(by_columns, field) == getattr(by_node, field), field
            assert [by_columns.writes(n) for n in by_node.shown] == [by_node.writes(n) for n in by_node.shown]
            assert [by_columns.start(n) for n in by_node.shown] == [by_node.start(n) for n in by_node.shown]

    def test_the_ledger_prints_the_same_either_way(self, shape, monkeypatch):
        """The printed ledger does not depend on how its targets were read."""
        model = SHAPES[shape]()
        fast = [printed(Ledger(model, p.pass_no, max_rows=30)) for p in model.passes]
        monkeypatch.setattr(ledger_targets, "_ByColumns", lambda p, shown, limit, low, high:
                            ledger_targets._ByNode(p, shown, limit))
        assert fast == [printed(Ledger(model, p.pass_no, max_rows=30)) for p in model.passes]

    def test_the_picture_folds_the_groups_the_walk_folds(self, shape, monkeypatch):
        """A capped picture's groups (sizes, op mixes, samples) come out as walked."""
        model = SHAPES[shape]()
        fast = [diagram(model, p.pass_no, max_nodes=10).source for p in model.passes]
        monkeypatch.setattr(selection.Selects, "_one_group", lambda self, kept, contains, size: None)
        assert fast == [diagram(model, p.pass_no, max_nodes=10).source for p in model.passes]


class TestOneGroup:
    def test_a_long_chain_folds_into_one_group_without_walking_it(self, monkeypatch):
        """Everything below the kept nodes of a chain joins the deepest kept node's group,
        counted from the columns: the walk of every hidden node never runs."""
        with trace() as t:
            y = Value(1.0, name="x")
            for _ in range(200):
                y = y * 1.5
            y.backward()
        model = TraceModel.from_events(t.events)
        monkeypatch.setattr(selection.Selects, "_fold", None)
        source = diagram(model, 1, max_nodes=10).source
        assert "391 nodes folded" in source and "into 1 dashed group" in source


class TestOpsSettled:
    def test_ties_named_need_their_order(self):
        """Two ops with the same count are named in the order they were met."""
        assert not ops_settled({}, {"mul": 3, "add": 3})
        assert ops_settled({"add": True}, {"mul": 3, "add": 3})

    def test_ops_past_the_named_ones_need_no_order(self):
        """Ties below the fourth name do not hold the walk."""
        counts = {"a": 9, "b": 8, "c": 7, "d": 6, "e": 1, "f": 1}
        assert ops_settled({}, counts)

    def test_a_group_names_its_most_common_ops_first(self):
        """The mix is by count, ties in the order met."""
        group = Group.counted(6, {"add": 1, "mul": 3, "neg": 1, "sub": 1})
        assert group.mix() == [("mul", 3), ("add", 1), ("neg", 1), ("sub", 1)]


class TestEarlierWrites:
    def test_finds_the_latest_earlier_pass_that_wrote_each_node_and_its_last_write(self):
        """The same pass and write as looking each node up in every earlier pass's map."""
        model = chain_model(30, passes=3)
        p = model.passes[2]
        found = last_writes_before(model, p, set(p.order))
        for node in p.order:
            expected = next(((q.pass_no, q.writes_to[node][-1]) for q in reversed(model.passes[:2])
                             if q.writes_to.get(node)), None)
            assert found.get(node) == expected
        assert found
