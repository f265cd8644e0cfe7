"""Notebooks: ``trace-backward NOTEBOOK.ipynb``, the ``%%trace_backward`` magic, sites by cell."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

nbformat = pytest.importorskip("nbformat")

from autodiff_trace import load_events  # noqa: E402
from autodiff_trace.frontends.cli import trace_backward as app  # noqa: E402
from autodiff_trace.analysis.diagnoser import source_line  # noqa: E402
from autodiff_trace.frontends.notebook import (  # noqa: E402
    NotebookError, _Runner, cell_labels, read_notebook, run_cells, without_ipython_lines,
)

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent
SEED_NOTEBOOK = ROOT / "examples" / "notebook_bug.ipynb"
v4 = nbformat.v4


def write_notebook(folder: Path, *cells, name: str = "nb.ipynb") -> Path:
    """A notebook of the given cells: strings are code cells, ("md", text) markdown."""
    made = [v4.new_markdown_cell(c[1]) if isinstance(c, tuple) else v4.new_code_cell(c)
            for c in cells]
    path = folder / name
    nbformat.write(v4.new_notebook(cells=made), str(path))
    return path


def seed_code_cells() -> list:
    return [c for c in nbformat.read(str(SEED_NOTEBOOK), as_version=4).cells if c.cell_type == "code"]


class TestReadingNotebooks:
    def test_the_example_holds_the_seed_notebooks_cells_in_order(self):
        """examples/notebook_bug.ipynb is valid and keeps the cells' execution counts."""
        notebook = nbformat.read(str(SEED_NOTEBOOK), as_version=4)
        nbformat.validate(notebook)
        assert [c.cell_type for c in notebook.cells] == ["markdown", "code"] * 6
        assert [c.execution_count for c in seed_code_cells()] == [17, 11, 12, 13, 20, 22]
        assert seed_code_cells()[-1].source.splitlines()[2] == "z = add(x,x)"

    def test_code_cells_are_named_by_execution_count(self):
        """Each code cell is labelled ``cell N`` after its In [N] prompt, markdown skipped."""
        cells = read_notebook(SEED_NOTEBOOK)
        assert [c.label for c in cells] == ["cell 17", "cell 11", "cell 12", "cell 13",
                                            "cell 20", "cell 22"]
        assert [c.position for c in cells] == [2, 4, 6, 8, 10, 12]

    @pytest.mark.parametrize("positions, counts, expected", [
        ([1, 3], [None, None], ["cell 1", "cell 3"]),
        ([1, 3], [7, None], ["cell 7", "cell 3"]),
        ([1, 3], [5, 5], ["cell 1", "cell 3"]),
        ([1, 2], [2, None], ["cell 1", "cell 2"]),
    ])
    def test_unnumbered_or_clashing_cells_go_by_position(self, positions, counts, expected):
        """A cell never run takes its position; if two labels would clash, all go by position."""
        assert cell_labels(positions, counts) == expected

    @pytest.mark.parametrize("content, problem", [
        ("hello", "is not a readable notebook (Notebook does not appear to be JSON"),
        ('{"cells": 3}', "is not a readable notebook"),
        ('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code"}]}',
         "is not a valid notebook"),
    ])
    def test_a_malformed_notebook_is_one_line_naming_it(self, tmp_path, content, problem):
        """Bad JSON, a non-notebook and a schema violation each give one line with the path."""
        path = tmp_path / "broken.ipynb"
        path.write_text(content)
        with pytest.raises(NotebookError) as caught:
            read_notebook(path)
        message = str(caught.value)
        assert message.startswith(f"{path} is not a ")
        assert problem in message and "\n" not in message

    def test_missing_nbformat_says_it_comes_with_the_package(self, monkeypatch):
        """Without nbformat (a dependency) the error says reinstalling brings it, naming no index."""
        monkeypatch.setitem(sys.modules, "nbformat", None)
        with pytest.raises(NotebookError, match=r"needs nbformat, a dependency of autodiff_trace; "
                                                r"reinstall autodiff_trace") as error:
            read_notebook(SEED_NOTEBOOK)
        assert "pip" not in str(error.value)


class TestWithoutIPythonLines:
    @pytest.mark.parametrize("source, expected, skipped", [
        ("%matplotlib inline\nx = 1\n", "pass\nx = 1\n", [1]),
        ("if True:\n    !ls\n", "if True:\n    pass\n", [2]),
        ("files = !ls\nx?\n", "pass\npass\n", [1, 2]),
        ("a, b = %who_ls\n", "pass\n", [1]),
        ("y = x % 2\nz = 'a!'  # why?\n", "y = x % 2\nz = 'a!'  # why?\n", []),
        ("Node.backward??\n", "pass\n", [1]),
        ("%%time\nx = 1\n", "", [1, 2]),
    ])
    def test_ipython_only_lines_become_pass_keeping_line_numbers(self, source, expected, skipped):
        """Magics, shell escapes and help lines turn into ``pass``; Python's ``%`` stays."""
        assert without_ipython_lines(source) == (expected, skipped)


class TestRunningCells:
    def test_cells_share_one_namespace_and_show_their_last_expression(self, tmp_path, capsys):
        """A later cell sees an earlier cell's names; a bare last expression is printed."""
        path = write_notebook(tmp_path, "a = 20", ("md", "# text"), "b = a + 1\nb * 2", "a;")
        assert run_cells(read_notebook(path)) == 0
        assert capsys.readouterr().out == "42\n"

    def test_a_cell_site_reads_back_as_its_source_line(self, tmp_path):
        """Findings quote code at ``cell N, line M`` from the cell that ran."""
        path = write_notebook(tmp_path, "a = 1\nb = 2", "c = 3")
        assert run_cells(read_notebook(path)) == 0
        assert (source_line("cell 1, line 2"), source_line("cell 2, line 1")) == ("b = 2", "c = 3")

    def test_a_raising_cell_stops_the_run_and_is_named(self, tmp_path, capsys):
        """The traceback starts in the failing cell; the cells after it are not run."""
        path = write_notebook(tmp_path, "def f(a):\n    return a / 0", "f(1)",
                              "print('not run')", "print('nor this')")
        assert run_cells(read_notebook(path)) == 1
        out, err = capsys.readouterr()
        assert out == ""
        assert err.splitlines()[:3] == ["Traceback (most recent call last):",
                                        '  File "<nb.ipynb cell 2>", line 1, in <module>',
                                        "    f(1)"]
        assert '  File "<nb.ipynb cell 1>", line 2, in f' in err
        assert err.splitlines()[-1] == ("trace-backward: cell 2 raised ZeroDivisionError; the 2 "
                                        "cells after it were not run (the trace so far is kept)")

    def test_a_syntax_error_names_the_cell_and_line_without_our_frames(self, tmp_path, capsys):
        """A cell that does not compile shows Python's syntax error message, and no traceback."""
        path = write_notebook(tmp_path, "x = 1", "y = (x +\n")
        assert run_cells(read_notebook(path)) == 1
        err = capsys.readouterr().err
        assert err.startswith('  File "<nb.ipynb cell 2>", line 1\n    y = (x +\n')
        assert "SyntaxError: '(' was never closed" in err and "autodiff_trace" not in err

    def test_display_works_as_in_jupyter(self, tmp_path, capsys):
        """``display(...)``, which Jupyter gives every cell, prints the value."""
        pytest.importorskip("IPython")
        path = write_notebook(tmp_path, "display(21 * 2)")
        assert run_cells(read_notebook(path)) == 0
        assert capsys.readouterr().out == "42\n"

    def test_ipython_lines_are_skipped_with_a_note_without_ipython(self, tmp_path, capsys,
                                                                   monkeypatch):
        """Without IPython a magic line is skipped, and a note names its cell and line."""
        monkeypatch.setattr(_Runner, "_ipython", lambda self: None)
        path = write_notebook(tmp_path, "x = 1", "%matplotlib inline\n!pip list\nprint(x + 1)")
        assert run_cells(read_notebook(path)) == 0
        out, err = capsys.readouterr()
        assert out == "2\n"
        assert err == ("trace-backward: cell 2: skipped IPython-only line 1 (%matplotlib inline) "
                       "and 1 more; install IPython to run them (the notebook extra of "
                       "autodiff_trace)\n")

    def test_ipython_lines_run_through_ipython_in_the_notebooks_namespace(self, tmp_path, capsys):
        """With IPython installed, ``%who_ls`` runs and sees the notebook's own names."""
        pytest.importorskip("IPython")
        path = write_notebook(tmp_path, "alpha = 1", "names = %who_ls\nprint('alpha' in names)")
        assert run_cells(read_notebook(path)) == 0
        assert capsys.readouterr().out == "True\n"


def run_cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "autodiff_trace", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


class TestTracingANotebook:
    def test_the_seed_notebook_shows_both_bugs_by_cell(self, tmp_path):
        """The run prints 1 22 18 and finds the stale grad and the re-fired closure, by cell."""
        out = tmp_path / "out"
        result = run_cli("--out", out, "--sink", "json", "--sink", "svg", "-q", SEED_NOTEBOOK)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "1 2 0\n1 22 18\n"
        findings = {f["finding"]: f for f in json.loads((out / "findings.json").read_text())}
        stale = findings["stale_gradient"]
        assert stale["names"] == ["x"] and stale["site"] == "cell 22, line 7"  # the second backward(z)
        assert stale["message"].startswith("x.grad was 2 when backward pass 2 began at cell 22, line 7 "
                                           "(`backward(z)`): it still held the gradient from pass 1, "
                                           "begun at cell 22, line 4")
        refired = findings["fired_outside_graph"]
        assert refired["site"] == "cell 20, line 5"  # the module-level order list
        assert refired["message"].startswith("z #3 (cell 22, line 3) fired in backward pass 2 "
                                             "although that pass's root z #6 (cell 22, line 6)")
        assert findings["polluted_grad"]["message"].startswith("x.grad ended backward pass 2 at 22,")
        sites = {e.site for e in load_events(out / "trace.jsonl") if getattr(e, "site", None)}
        assert sites == {"cell 11, line 9", "cell 11, line 10", "cell 12, line 9",
                         "cell 12, line 10", "cell 20, line 4", "cell 20, line 5", "cell 22, line 1",
                         "cell 22, line 2", "cell 22, line 3", "cell 22, line 6", "cell 22, line 7"}
        assert "made at cell 22, line 3" in (out / "pass_2.svg").read_text()

    def test_a_raising_cell_keeps_the_partial_trace(self, tmp_path):
        """The cell's error is named, exit code 1, and the passes before it are written."""
        path = write_notebook(tmp_path, "from autodiff_trace import Value\nx = Value(3.0)",
                              "y = x * x\ny.backward()", "1 / 0", "print('not run')")
        result = runner.invoke(app, ["--out", str(tmp_path / "out"), "--sink", "json", "-q",
                                     str(path)])
        assert result.exit_code == 1
        assert ("trace-backward: cell 3 raised ZeroDivisionError; the cell after it was not run "
                "(the trace so far is kept)") in result.stderr
        events = load_events(tmp_path / "out" / "trace.jsonl")
        assert [e.kind for e in events if e.kind.startswith("backward_")][-1] == "backward_finished"
        assert {e.site for e in events if e.kind == "node_created"} == {"cell 1, line 2",
                                                                         "cell 2, line 1"}

    def test_a_malformed_notebook_exits_2_with_one_line(self, tmp_path):
        """No traceback: one line naming the file, exit code 2."""
        path = tmp_path / "broken.ipynb"
        path.write_text('{"cells": 3}')
        result = runner.invoke(app, ["--out", str(tmp_path / "out"), str(path)])
        assert result.exit_code == 2
        assert result.stderr == (f"trace-backward: {path} is not a readable notebook ('int' "
                                 f"object is not iterable); give a .ipynb file saved by Jupyter\n")

    def test_options_after_the_notebook_are_refused_with_the_fix(self, tmp_path):
        """A notebook takes no arguments; the message shows the command with options first."""
        result = runner.invoke(app, [str(SEED_NOTEBOOK), "--out", "x"])
        assert result.exit_code == 2
        assert result.stderr == ("trace-backward: a notebook takes no arguments; put options "
                                 f"before it: trace-backward --out x {SEED_NOTEBOOK}\n")


def run(ipython, source: str):
    from IPython.utils.capture import capture_output

    with capture_output() as captured:
        result = ipython.run_cell(source, store_history=True)
    return result, captured


class TestMagic:
    def test_load_ext_registers_the_cell_and_line_magics(self, shell):
        """``%load_ext autodiff_trace`` adds ``%%trace_backward`` and ``%trace_backward``."""
        assert shell.find_cell_magic("trace_backward") is not None
        assert shell.find_line_magic("trace_backward") is not None

    def test_unload_ext_removes_both_magics(self, shell):
        """``%unload_ext autodiff_trace`` takes both magics away again."""
        run(shell, "%unload_ext autodiff_trace")
        assert shell.find_cell_magic("trace_backward") is None
        assert shell.find_line_magic("trace_backward") is None

    def test_cell_magic_traces_the_seed_cell_and_displays_each_pass(self, shell, tmp_path):
        """The seed's last cell under the magic: its output, findings by cell, one SVG per pass."""
        for cell in seed_code_cells()[:-1]:
            assert run(shell, cell.source)[0].success
        count = shell.execution_count
        result, captured = run(shell, f"%%trace_backward --out {tmp_path}\n"
                                      + seed_code_cells()[-1].source)
        assert result.success, result.error_in_exec
        assert "1 2 0\n" in captured.stdout and "1 22 18\n" in captured.stdout
        assert "fired_outside_graph: z #3 (cell " + str(count) + ", line 4) fired" in captured.stdout
        svgs = [o.data["image/svg+xml"] for o in captured.outputs if "image/svg+xml" in o.data]
        assert len(svgs) == 2 and f"made at cell {count}, line 4" in svgs[1]
        findings = json.loads((tmp_path / "findings.json").read_text())
        assert [(f["finding"], f["site"]) for f in findings if f["severity"] != "info"] == [
            ("stale_gradient", f"cell {count}, line 8"),  # the second backward(z), below the magic line
            ("fired_outside_graph", f"cell {count - 1}, line 5"),  # the loop over the module-level order
            ("polluted_grad", f"cell {count - 1}, line 5")]

    def test_line_magic_traces_one_statement_and_returns_its_value(self, shell, tmp_path):
        """``%trace_backward`` traces its statement at its own line of the cell."""
        run(shell, "from autodiff_trace import Value")
        result, captured = run(shell, f"x = Value(2.0)\n%trace_backward -q --sink json -o "
                                      f"{tmp_path} (x * x).backward() or 'done'")
        assert result.success, result.error_in_exec
        assert result.result == "done"
        events = load_events(tmp_path / "trace.jsonl")
        assert [(e.op, e.site) for e in events if e.kind == "node_created"] == [
            ("mul", f"cell {shell.execution_count - 1}, line 2")]
        assert [e.kind for e in events][-1] == "backward_finished"

    def test_a_raising_cell_fails_like_any_cell_and_keeps_the_trace(self, shell, tmp_path):
        """The error reaches IPython as the cell's own; the passes before it are written."""
        result, _ = run(shell, f"%%trace_backward -q --sink json -o {tmp_path}\n"
                               "from autodiff_trace import Value\n"
                               "y = Value(3.0) * 2\ny.backward()\n1 / 0")
        assert isinstance(result.error_in_exec, ZeroDivisionError)
        kinds = [e.kind for e in load_events(tmp_path / "trace.jsonl")]
        assert "backward_finished" in kinds

    @pytest.mark.parametrize("source, message", [
        ("%trace_backward", "%trace_backward needs a statement"),
        ("%%trace_backward x = 1\ny = 2", "%%trace_backward takes options only, not 'x = 1'"),
        ("%%trace_backward --attr grad\nx = 1", "--attr 'grad' should read KEY=NAME"),
    ])
    def test_bad_usage_is_one_line(self, shell, source, message):
        """Misuse raises IPython's UsageError with a message naming the fix."""
        from IPython.core.error import UsageError

        result, _ = run(shell, source)
        assert isinstance(result.error_in_exec, UsageError)
        assert str(result.error_in_exec).startswith(message)
