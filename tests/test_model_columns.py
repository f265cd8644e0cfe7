"""The trace model held as columns gives back exactly what it was given, and a picture of
a big pass, read from those columns, says what the pass did."""

from __future__ import annotations

import math

from autodiff_trace import Value, trace
from autodiff_trace.core.columns import NodeSet, NodeTable, WriteLog
from autodiff_trace.core.events import BackwardFnFired, BackwardStarted, GradAccumulated, NodeCreated
from autodiff_trace.core.model import TraceModel
from autodiff_trace.replay.tracediff import diff_traces
from autodiff_trace.views.graph.diagram import diagram
from streams import chain_events


def node(node_id, value=1.5, parents=(), name="x", module=None):
    return NodeCreated(node_id, 0.25, node_id, "mul" if parents else "", value, parents, name,
                       "s.py:3", "<module>", module)


def write(seq, target, fired_by=None, local=None, contribution=2.0, replaced=False, pass_no=1):
    return GradAccumulated(seq, 0.5, pass_no, target, fired_by, local, contribution, 1.0,
                           1.0 + contribution, replaced, None)


class TestNodeTable:
    def test_a_node_reads_back_as_it_was_made(self):
        """Every field of a stored node reads back unchanged, and its grad can be set."""
        table = NodeTable()
        table.add(node(1))
        table.add(node(2, 3.0, (1, 1), "y", module="model.0"))
        info = table[2]
        assert (info.id, info.name, info.op, info.value, info.parents, info.site, info.function,
                info.module, info.grad) == (2, "y", "mul", 3.0, (1, 1), "s.py:3", "<module>", "model.0", 0.0)
        info.grad = 4.5
        assert table[2].grad == 4.5 and table[1].module is None and list(table) == [1, 2]

    def test_values_a_float_column_cannot_hold_come_back_unchanged(self):
        """An int value, a NaN and an id beyond 64 bits are kept whole, not converted."""
        table = NodeTable()
        nan = float("nan")
        table.add(node(1, 7))
        table.add(node(2, nan))
        table.add(node(2 ** 70, 1.0, (1,)))
        assert repr(table[1].value) == "7" and table[2].value is nan
        assert table[2 ** 70].parents == (1,) and 2 ** 70 in table
        table[1].grad = 3
        assert repr(table[1].grad) == "3"

    def test_a_node_made_twice_keeps_its_place_and_takes_the_new_fields(self):
        """A second node_created for an id replaces the node where it stood, grad back to 0."""
        table = NodeTable()
        table.add(node(5))
        table.add(node(6))
        table[5].grad = 2.0
        table.add(node(5, 9.0, (6,), "z"))
        assert list(table) == [5, 6] and table[5].name == "z" and table[5].parents == (6,)
        assert table[5].grad == 0.0 and len(table) == 2

    def test_ids_far_apart_are_found(self):
        """Ids too sparse for one slot per id are still found, and missing ones are not."""
        table = NodeTable()
        for node_id in (3, 10 ** 9, 7):
            table.add(node(node_id))
        assert [table[n].id for n in (3, 10 ** 9, 7)] == [3, 10 ** 9, 7]
        assert 4 not in table and table.get(-1) is None


class TestWriteLog:
    def test_every_write_comes_back_equal(self):
        """Writes of every shape (no writer, no local grad, an assignment, an int, a NaN)
        read back equal to what was stored, NaN included."""
        nan = float("nan")
        writes = [write(0, 1), write(1, 2, 1, 0.5), write(2, 2, 1, None, 3, True),
                  write(3, 1, 2, 1.0, nan), write(4, 2 ** 70, 1)]
        log = WriteLog(1)
        for w in writes:
            log.append(w, {})
        assert list(log) == writes and log[-1] == writes[-1] and log[1:3] == writes[1:3]
        assert [log.target(r) for r in range(len(log))] == [1, 2, 2, 1, 2 ** 70]
        assert [log.writer(r) for r in range(len(log))] == [None, 1, 1, 2, 1]


class TestNodeSet:
    def test_membership_matches_a_set_at_every_size(self):
        """Small, big and dense, big and sparse: the same members as a frozenset."""
        for ids in (list(range(10)), list(range(5, 300_005)), [i * 1000 for i in range(150_000)]):
            members = NodeSet(ids)
            probes = [ids[0], ids[-1], ids[len(ids) // 2], -1, ids[-1] + 1, 7, "x"]
            assert [p in members for p in probes] == [p in set(ids) for p in probes]
            assert len(members) == len(set(ids))


class TestPassLookups:
    def test_lookups_made_on_first_use_agree_with_the_events(self):
        """grads_before, fire_number, upstream and writes_to match what the events say."""
        events = chain_events(30)
        model = TraceModel.from_events(events)
        p = model.passes[0]
        started = next(e for e in events if isinstance(e, BackwardStarted))
        fired = [e for e in events if isinstance(e, BackwardFnFired)]
        writes = [e for e in events if isinstance(e, GradAccumulated)]
        assert p.grads_before == dict(zip(started.order, started.grads_before))
        assert p.upstream == {e.node: e.upstream for e in fired}
        assert p.fire_number == {e.node: i for i, e in reversed(list(enumerate(fired, 1)))}
        by_target = {}
        for w in writes:
            by_target.setdefault(w.target, []).append(w)
        assert dict(p.writes_to) == by_target and list(p.writes) == writes
        assert p.grads_before_of({started.order[0]}) == {started.order[0]: started.grads_before[0]}


class TestBigPassPictures:
    def test_a_frame_counts_the_writes_made_by_its_step(self):
        """A chain's frame after k firings says k of them fired and 1 + 2k grads were written."""
        model = TraceModel.from_events(chain_events(200))
        for step in (2, 5, 150):
            label = diagram(model, 1, max_nodes=20, step=step).source
            assert f"after {step} of 200 firings" in label
            assert f"{step} backward functions fired, {1 + 2 * step} grad writes" in label

    def test_a_picture_drawn_again_is_the_same(self):
        """Drawing a pass after its frames (which share its selection) gives the same source."""
        model = TraceModel.from_events(chain_events(200))
        first = diagram(model, 1, max_nodes=20).source
        diagram(model, 1, max_nodes=20, step=3)
        again = diagram(TraceModel.from_events(chain_events(200)), 1, max_nodes=20).source
        assert diagram(model, 1, max_nodes=20).source == first
        assert again.count("folded") == first.count("folded") and "showing 20 of 401 nodes" in first


class TestCompactDiff:
    def test_numbers_equal_to_twelve_digits_match(self):
        """Grads that differ only past 12 significant digits do not part the traces."""
        def run(c: float) -> list:
            with trace() as t:
                x = Value(2.0, name="x")
                y = x * c
                y.backward()
            return t.events

        result = diff_traces(run(0.1 + 0.2), run(0.3))
        assert result.same and not math.isnan(result.a.grads.get(result.a.root))
