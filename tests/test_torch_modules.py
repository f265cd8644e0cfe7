"""Nodes know the model part that made them, and the diagram boxes them by it."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is an optional extra: pip install '.[torch]'")
from torch import nn  # noqa: E402

from autodiff_trace import Value, trace  # noqa: E402
from autodiff_trace.core.events import NodeCreated, from_dict, to_dict  # noqa: E402
from autodiff_trace.views.graph.diagram import diagram  # noqa: E402
from test_torch import traced_events  # noqa: E402


class Net(nn.Module):
    """An encoder and a head, called from the module's own forward."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(3, 4)
        self.head = nn.Linear(4, 1)

    def forward(self, x):
        return self.head(torch.tanh(self.encoder(x)))


def mlp_events() -> list:
    def run():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
        model(torch.randn(5, 3)).pow(2).mean().backward()
    return traced_events(run)


def modules_by_op(events) -> list:
    return [(e.op, e.module) for e in events if e.kind == "node_created"]


class TestEvents:
    """node_created carries ``module``: where the forward was when the node was made."""

    def test_a_sequential_names_each_layer(self):
        """Each layer's parameters and ops carry model.0, model.1, model.2; the loss's ops none."""
        by_op = modules_by_op(mlp_events())
        assert by_op == [("", "model.0"), ("t", "model.0"), ("", "model.0"), ("linear", "model.0"),
                         ("relu", "model.1"), ("", "model.2"), ("t", "model.2"), ("", "model.2"),
                         ("linear", "model.2"), ("pow", None), ("mean", None)]

    def test_a_custom_module_names_its_parts(self):
        """Ops in Net.forward carry net; those inside its layers net.encoder and net.head."""
        def run():
            net = Net()
            net(torch.randn(2, 3)).sum().backward()
        by_op = modules_by_op(traced_events(run))
        assert ("tanh", "net") in by_op and ("linear", "net.encoder") in by_op
        assert ("linear", "net.head") in by_op and ("sum", None) in by_op

    def test_a_module_in_no_variable_goes_by_its_class(self):
        """A module made and called in one expression is named by its class."""
        def run():
            x = torch.randn(2, 3, requires_grad=True)
            nn.Tanh()(x).sum().backward()
        assert ("tanh", "Tanh") in modules_by_op(traced_events(run))

    def test_scalar_engines_carry_no_module(self):
        """A scalar engine's nodes have module None."""
        with trace() as t:
            x = Value(2.0)
            (x * x).backward()
        assert {e.module for e in t.events if e.kind == "node_created"} == {None}


def as_json(event) -> dict:
    return json.loads(json.dumps(to_dict(event)))


class TestJson:
    """``module`` is optional in JSON: written when known, absent otherwise."""

    def test_a_known_module_travels(self):
        """A node with a module keeps it through to_dict and from_dict."""
        event = NodeCreated(0, 0.0, 1, "linear", 2.0, (), "h", "a.py:3", "<module>", "model.0")
        assert as_json(event)["module"] == "model.0" and from_dict(as_json(event)) == event

    def test_no_module_writes_no_field(self):
        """A node without one is written exactly as before, and reads back with module None."""
        event = NodeCreated(0, 0.0, 1, "mul", 2.0, (), "z", None, None)
        assert "module" not in as_json(event) and from_dict(as_json(event)).module is None

    def test_a_module_that_is_not_text_is_refused(self):
        """module must be a string or null."""
        line = {**as_json(NodeCreated(0, 0.0, 1, "mul", 2.0, (), "z", None, None)), "module": 3}
        with pytest.raises(ValueError, match="node_created.module must be a string or null, got 3"):
            from_dict(line)


class TestDiagram:
    """The pass diagram boxes nodes by module, nested as the modules are."""

    def test_each_layer_is_a_box_inside_the_model(self):
        """model holds model.0, model.1 and model.2; each layer's nodes sit in its box."""
        source = diagram(mlp_events()).source
        assert source.count("subgraph cluster_module_") == 4
        for name in ("model", "model.0", "model.1", "model.2"):
            assert f"label=<<b>{name}</b>>" in source
        model_box = source.index("<b>model</b>")
        assert all(source.index(f"<b>model.{i}</b>") > model_box for i in range(3))

    def test_the_switch_draws_them_unboxed(self):
        """modules=False draws the same nodes with no module box."""
        events = mlp_events()
        boxed, unboxed = diagram(events).source, diagram(events, modules=False).source
        assert "cluster_module" not in unboxed
        assert sorted(line for line in boxed.splitlines() if "->" in line) == \
            sorted(line for line in unboxed.splitlines() if "->" in line)

    def test_a_scalar_diagram_is_unchanged_by_the_switch(self):
        """A trace without modules draws the same DOT either way."""
        with trace() as t:
            x = Value(2.0)
            y = x * x + x
            y.backward()
        assert diagram(t.events).source == diagram(t.events, modules=False).source
