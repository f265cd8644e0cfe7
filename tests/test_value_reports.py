"""Value's lean reports: the node's name and site kept on the node, and a traced pass that
captures its own events, give what the one-by-one path gives."""

from __future__ import annotations

import importlib

from autodiff_trace import Value, trace
from autodiff_trace.engine import value as value_module
from autodiff_trace.core.tracefile import load_events
from autodiff_trace.sinks.jsonl import JsonlSink


backward_module = importlib.import_module("autodiff_trace.engine.backward")  # the package exports a function of that name


def one_at_a_time(event):
    """A filter that keeps every event: with it, nothing is captured and each event goes alone."""
    return event


def without_time(events) -> list:
    return [event._replace(t=0.0, **({"duration": 0.0} if "duration" in event._fields else {}))
            for event in events]


def both_ways(tmp_path, monkeypatch, program) -> tuple:
    """The events of ``program`` captured in batches and sent one by one, ids from 1 each time."""
    runs = []
    for name, filters in (("captured", ()), ("single", (one_at_a_time,))):
        monkeypatch.setattr(value_module, "_numbering", value_module.ids_from(1))
        with trace([JsonlSink(tmp_path / f"{name}.jsonl")], filters=filters):
            program()
        runs.append(without_time(load_events(tmp_path / f"{name}.jsonl")))
    return tuple(runs)


def chain(length: int) -> Value:
    x = Value(1.0)
    out = x
    for _ in range(length):
        out = (out * 0.999).relu() + x
    return out


class TestTracedPass:
    def test_a_pass_of_many_stretches_writes_what_single_events_write(self, tmp_path, monkeypatch):
        """A pass far longer than one stretch of the lock writes every step once, as sent alone."""
        monkeypatch.setattr(backward_module, "STRETCH", 64)
        captured, single = both_ways(tmp_path, monkeypatch, lambda: chain(300).backward())
        assert captured == single
        finished = next(e for e in captured if e.kind == "backward_finished")
        assert finished.fired == sum(e.kind == "backward_fn_fired" for e in captured)
        assert finished.accumulated == sum(e.kind == "grad_accumulated" for e in captured)

    def test_a_second_pass_over_the_same_graph_writes_what_single_events_write(self, tmp_path, monkeypatch):
        """Grads left by a first pass (kept apart from what each node receives) change nothing."""
        def twice():
            out = chain(40)
            out.backward()
            out.backward()
        captured, single = both_ways(tmp_path, monkeypatch, twice)
        assert captured == single
        assert sum(e.kind == "backward_finished" for e in captured) == 2


class TestNamesOnValues:
    def test_an_unnamed_traced_node_is_called_by_its_op_and_id(self, tmp_path):
        """A node no line names is ``op#id`` on the Value, as in its event."""
        with trace([JsonlSink(tmp_path / "t.jsonl")]) as t:
            x = Value(2.0)
            y = (x * x).relu()
        inner = y.parents[0]
        made = {e.node: e.name for e in t.events if e.kind == "node_created"}
        assert inner.name == f"mul#{inner.id}" == made[inner.id]
        assert (x.name, y.name) == ("x", "y") == (made[x.id], made[y.id])

    def test_a_traced_constant_keeps_the_name_of_its_value(self, tmp_path):
        """A wrapped number is named by its value when made, whatever its data becomes later."""
        with trace([JsonlSink(tmp_path / "t.jsonl")]):
            x = Value(2.0)
            y = x * 3
        constant = y.parents[1]
        constant.data = 5.0
        assert constant.name == "3" and constant.site == y.site

    def test_each_run_of_a_loop_line_names_its_own_result(self, tmp_path):
        """``y = y * 2.0`` three times: each run's product is y, its constant 2, and the line after
        the loop names its own result."""
        with trace([JsonlSink(tmp_path / "t.jsonl")]) as t:
            y = Value(1.0)
            for _ in range(3):
                y = y * 2.0
            z = y + 1.0
        assert [e.name for e in t.events if e.kind == "node_created"] == \
            ["y", "2", "y", "2", "y", "2", "y", "1", "z"]
        assert z.name == "z" and [y.name, y.parents[0].name, y.parents[1].name] == ["y", "y", "2"]

    def test_the_nodes_a_loop_line_names_alike_share_one_name_and_site(self, tmp_path):
        """A million-op loop holds no (name, site) pair per node: its products share one, its
        constants another."""
        with trace([JsonlSink(tmp_path / "t.jsonl")]):
            y = Value(1.0)
            for _ in range(50):
                y = y * 1.5
            y.backward()
        products, constants = [], []
        node = y.parents[0]
        while node.parents:
            products.append(node)
            constants.append(node.parents[1])
            node = node.parents[0]
        assert {(n.name, n.site) for n in products} == {("y", y.site)}
        assert len({id(n._info) for n in products}) == 1 and len({id(n._info) for n in constants}) == 1

    def test_a_node_made_by_a_generator_on_an_assignment_line_has_that_line_as_site(self, tmp_path):
        """``total = sum(w * x for ...)``: the products and the sum share the line; only the sum is total."""
        with trace([JsonlSink(tmp_path / "t.jsonl")]):
            w = Value(2.0)
            total = sum(w * x for x in (1.0, 2.0))
        product = total.parents[1]
        assert total.name == "total" and product.name == f"mul#{product.id}"
        assert product.site == total.site
