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


    def test_parameters_and_ops_carry_their_dtype_and_shape(self):
        """A parameter's node says float32[4, 3]; the ops the forward made say their output's."""
        tensors = {e.name: e.tensor for e in mlp_events() if e.kind == "node_created"}
        assert tensors["model.0.weight"] == "float32[4, 3]" and tensors["model.0.bias"] == "float32[4]"
        assert "float32[5, 4]" in tensors.values() and "float32[]" in tensors.values()  # linear, mean

    def test_scalar_engines_carry_no_tensor(self):
        """A scalar engine's nodes have tensor None, and their JSON lines no such field."""
        with trace() as t:
            x = Value(2.0)
            (x * x).backward()
        created = [e for e in t.events if e.kind == "node_created"]
        assert {e.tensor for e in created} == {None} and all("tensor" not in to_dict(e) for e in created)


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

    def test_a_known_tensor_travels_and_an_unknown_one_is_left_out(self):
        """tensor, like module, is written when known and reads back as None when absent."""
        event = NodeCreated(0, 0.0, 1, "linear", 2.0, (), "h", None, None, "model.0", "float32[2, 3]")
        assert as_json(event)["tensor"] == "float32[2, 3]" and from_dict(as_json(event)) == event
        bare = NodeCreated(0, 0.0, 1, "mul", 2.0, (), "z", None, None)
        assert "tensor" not in as_json(bare) and from_dict(as_json(bare)).tensor is None

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


def box_labels(source: str) -> dict:
    """Folded box id -> its label text, from the DOT source."""
    return {line.split()[0]: line for line in source.splitlines() if line.strip().startswith("m") and "[label=" in line}


def wide_events(layers: int = 12) -> list:
    """A deeper MLP: more nodes made in modules than "auto" boxes."""
    def run():
        torch.manual_seed(0)
        parts = []
        for _ in range(layers):
            parts += [nn.Linear(4, 4), nn.Tanh()]
        model = nn.Sequential(*parts, nn.Linear(4, 1))
        model(torch.randn(5, 4)).pow(2).mean().backward()
    return traced_events(run)


class TestFoldedDiagram:
    """modules="fold" draws one box per module: a model reads as its layers."""

    def test_a_two_layer_mlp_is_three_boxes_in_a_row(self):
        """model.0, model.1, model.2 are one box each, joined in the forward's order; the loss's
        ops, made in no module, are drawn as nodes of their own."""
        source = diagram(mlp_events(), modules="fold").source
        boxes = box_labels(source)
        names = {box: next(n for n in ("model.0", "model.1", "model.2") if f"<b>{n}</b>" in label)
                 for box, label in boxes.items()}
        assert sorted(names.values()) == ["model.0", "model.1", "model.2"]
        box_of = {name: box for box, name in names.items()}
        assert f"{box_of['model.0']} -> {box_of['model.1']}" in source
        assert f"{box_of['model.1']} -> {box_of['model.2']}" in source
        assert "cluster_module" not in source and "<b>t</b>" not in source
        assert "pow" in source and "mean" in source

    def test_a_layer_box_lists_its_ops_and_its_parameters_grads(self):
        """A linear layer's box names linear and t, and its weight and bias with their grads."""
        source = diagram(mlp_events(), modules="fold").source
        layer = next(label for label in box_labels(source).values() if "<b>model.0</b>" in label)
        assert "linear, t" in layer and "4 nodes" in layer
        assert "weight  grad" in layer and "bias  grad" in layer

    def test_a_stale_parameter_is_marked_in_its_box(self):
        """Without zero_grad, pass 2's layer boxes show each parameter's stale start and are
        outlined by the stale_gradient finding."""
        def run():
            torch.manual_seed(0)
            model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            x = torch.randn(5, 3)
            for _ in range(2):
                model(x).pow(2).mean().backward()
                optimizer.step()
        source = diagram(traced_events(run), 2, modules="fold").source
        layer = next(label for label in box_labels(source).values() if "<b>model.0</b>" in label)
        assert layer.count("→") == 2 and "stale_gradient" in layer and 'border="3"' in layer
        assert "stale: grad was not zero" in source

    def test_auto_folds_a_deep_model_and_boxes_a_small_one(self):
        """auto (the default) folds a pass with more than FOLD_FROM nodes made in modules."""
        from autodiff_trace.views.graph.folded import FOLD_FROM

        deep = wide_events()
        assert sum(1 for e in deep if e.kind == "node_created" and e.module) > FOLD_FROM
        assert "one box per module" in diagram(deep).source
        assert "cluster_module" in diagram(mlp_events()).source
        assert "cluster_module" in diagram(deep, modules="box").source

    def test_a_scalar_diagram_is_unchanged_by_folding(self):
        """A trace without modules draws the same DOT whatever the view asked for."""
        with trace() as t:
            x = Value(2.0)
            y = x * x + x
            y.backward()
        assert diagram(t.events, modules="fold").source == diagram(t.events, modules="none").source

    def test_an_unknown_view_is_refused_in_one_line(self):
        """A view that is not auto, box, fold or none names the four."""
        with pytest.raises(ValueError, match="use auto, box, fold, none"):
            diagram(mlp_events(), modules="folded")


class TestFoldedFromTheCommand:
    """--modules reaches the pictures of trace-backward and of render."""

    def test_render_draws_a_saved_trace_folded(self, tmp_path):
        """render --modules fold redraws a saved PyTorch trace one box per module."""
        from typer.testing import CliRunner

        from autodiff_trace.frontends.cli import app
        from autodiff_trace.sinks.jsonl import JsonlSink

        path = tmp_path / "trace.jsonl"
        sink = JsonlSink(path)
        for event in mlp_events():
            sink.handle(event)
        sink.close()
        result = CliRunner().invoke(app, ["render", str(path), "--to", "svg", "--modules", "fold",
                                          "--out", str(tmp_path / "folded")])
        assert result.exit_code == 0, result.output
        assert "one box per module" in (tmp_path / "folded" / "pass_1.dot").read_text()
        result = CliRunner().invoke(app, ["render", str(path), "--to", "svg", "--modules", "folded",
                                          "--out", str(tmp_path / "bad")])
        assert result.exit_code == 2 and "'folded' is not one of" in result.output

    def test_trace_backward_folds_when_asked(self, tmp_path):
        """trace-backward --modules fold writes each pass's picture one box per module."""
        import subprocess
        import sys
        from pathlib import Path

        script = tmp_path / "train.py"
        script.write_text("import torch\nfrom torch import nn\ntorch.manual_seed(0)\n"
                          "model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))\n"
                          "loss = model(torch.randn(5, 3)).pow(2).mean()\nloss.backward()\n")
        command = [str(Path(sys.executable).with_name("trace-backward")), "--modules", "fold", "--quiet",
                   "--out", str(tmp_path / "out"), str(script)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "one box per module" in (tmp_path / "out" / "pass_1.dot").read_text()
