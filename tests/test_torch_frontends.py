"""PyTorch through every front end: a script, ``-m``, a notebook, ``@traced`` and ``%%trace_backward``."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is an optional extra: pip install '.[torch]'")
from torch import nn  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from autodiff_trace import traced, traced_block  # noqa: E402
from autodiff_trace.frontends.cli import trace_backward as app  # noqa: E402
from trace_lines import line_objects

runner = CliRunner()

FORGETFUL_LOOP = textwrap.dedent("""\
    import torch
    from torch import nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(8, 3)
    for step in range(3):
        loss = model(x).pow(2).mean()
        loss.backward()
        optimizer.step()
    print("trained")
    """)
BACKWARD_LINE = 9  # the line of loss.backward() in FORGETFUL_LOOP


def warnings_in(out: Path) -> list:
    """(finding, site) of each warning or error in a run's findings.json."""
    return [(f["finding"], f["site"]) for f in json.loads((out / "findings.json").read_text())
            if f["severity"] != "info"]


def entry_points() -> tuple:
    return (torch.autograd.backward, torch.autograd.grad, torch.Tensor.backward,
            torch.optim.Optimizer.zero_grad, nn.Module.zero_grad,
            tuple(torch.overrides._get_current_function_mode_stack()))


def forgetful_training() -> None:
    """Three SGD steps and no zero_grad(): each backward() adds to the last step's gradients."""
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        model(torch.randn(4, 3)).pow(2).mean().backward()
        optimizer.step()


def careful_training() -> None:
    """The same loop with zero_grad() every step."""
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.randn(4, 3)).pow(2).mean().backward()
        optimizer.step()


class TestCommandLine:
    """``trace-backward`` traces torch in a module run with ``-m`` and in a notebook."""

    def test_dash_m_traces_a_torch_module(self, tmp_path, monkeypatch):
        """``-m torchloop.train`` names the stale gradient at the module's backward() line."""
        (tmp_path / "torchloop").mkdir()  # a package name no other test imports
        (tmp_path / "torchloop" / "__init__.py").write_text("")
        (tmp_path / "torchloop" / "train.py").write_text(FORGETFUL_LOOP)
        monkeypatch.chdir(tmp_path)
        result = runner.invoke(app, ["--out", "o", "--sink", "json", "-q", "-m", "torchloop.train"])
        assert result.exit_code == 0, result.output
        assert "trained" in result.output
        found = warnings_in(tmp_path / "o")
        assert [f for f, _ in found] == ["stale_gradient"]
        assert found[0][1].endswith(f"train.py:{BACKWARD_LINE}")

    def test_a_notebook_names_the_cell_and_line(self, tmp_path):
        """A notebook whose second cell trains without zero_grad(): the finding reads ``cell 2, line 3``."""
        nbformat = pytest.importorskip("nbformat")
        setup, loop = FORGETFUL_LOOP.split("for step")
        cells = [nbformat.v4.new_code_cell(setup, execution_count=1),
                 nbformat.v4.new_code_cell("for step" + loop, execution_count=2)]
        notebook = tmp_path / "train.ipynb"
        nbformat.write(nbformat.v4.new_notebook(cells=cells), str(notebook))
        result = runner.invoke(app, ["--out", str(tmp_path / "o"), "--sink", "json", "-q", str(notebook)])
        assert result.exit_code == 0, result.output
        assert warnings_in(tmp_path / "o") == [("stale_gradient", "cell 2, line 3")]


class TestDecorator:
    """``@traced`` and ``traced_block`` trace torch, and put every entry point back."""

    def test_a_decorated_training_function_is_traced(self, tmp_path):
        """@traced on a loop without zero_grad(): its passes are in trace.jsonl and the stale
        gradient is named at the function's backward() line."""
        train = traced(forgetful_training, out=tmp_path, sinks=("json",))
        train()
        kinds = [line["kind"] for line in line_objects(tmp_path / "trace.jsonl")]
        assert kinds.count("backward_started") == 3 and "grad_accumulated" in kinds
        found = warnings_in(tmp_path)
        assert [f for f, _ in found] == ["stale_gradient"]
        assert "test_torch_frontends.py:" in found[0][1]

    def test_a_correct_decorated_loop_is_silent(self, tmp_path):
        """@traced on a loop that zeroes every step: passes traced, no finding."""
        traced(careful_training, out=tmp_path, sinks=("json",))()
        text = (tmp_path / "trace.jsonl").read_text()
        assert '"backward_started"' in text and warnings_in(tmp_path) == []

    def test_the_block_restores_every_entry_point(self, tmp_path):
        """After a traced_block, backward, grad, zero_grad and the mode stack are torch's own."""
        before = entry_points()
        with traced_block(tmp_path, sinks=("json",)):
            assert torch.Tensor.backward is not before[2]
            careful_training()
        assert entry_points() == before

    def test_the_result_and_gradients_are_unchanged(self):
        """A decorated function returns what it returns untraced, with the same gradients."""
        def grads():
            torch.manual_seed(1)
            w = torch.randn(3, requires_grad=True)
            (w.sin() * w).sum().backward()
            return w.grad.tolist()
        assert traced(grads, sinks=())() == grads()


class TestMagic:
    """``%%trace_backward`` traces a torch cell."""

    def test_the_cell_magic_names_the_stale_gradient_by_cell(self, shell, tmp_path):
        """A forgetful loop under the magic: one stale_gradient at the cell's backward() line."""
        from IPython.utils.capture import capture_output

        with capture_output() as captured:
            result = shell.run_cell(f"%%trace_backward -q --sink json --out {tmp_path}\n" + FORGETFUL_LOOP,
                                    store_history=True)
        assert result.success, result.error_in_exec
        assert "trained" in captured.stdout
        found = warnings_in(tmp_path)
        assert [f for f, _ in found] == ["stale_gradient"]
        assert found[0][1] == f"cell {shell.execution_count - 1}, line {BACKWARD_LINE + 1}"
