"""The trace-backward command: running scripts, the files it writes, and its errors."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autodiff_trace import load_events
from autodiff_trace.frontends.cli import trace_backward as app

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def write_script(folder: Path, body: str, name: str = "script.py") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return path


OUR_ENGINE = """
    import sys
    from autodiff_trace import Value
    x = Value(3.0)
    y = x * x
    y.backward()
    print("grad", x.grad, "args", sys.argv[1:])
"""


class TestRunningScripts:
    def test_runs_script_with_its_arguments_and_writes_the_files(self, tmp_path):
        """The script sees its own argv; trace.jsonl, one SVG per pass and the findings are written."""
        script = write_script(tmp_path, OUR_ENGINE)
        out = tmp_path / "out"
        result = runner.invoke(app, ["--out", str(out), "--no-live", str(script), "a", "--b"])
        assert result.exit_code == 0, result.output
        assert "grad 6.0 args ['a', '--b']" in result.output
        assert sorted(p.name for p in out.iterdir()) == [
            "findings.json", "findings.txt", "pass_1.dot", "pass_1.svg", "report.svg", "report.txt",
            "trace.jsonl"]
        kinds = [e.kind for e in load_events(out / "trace.jsonl")]
        assert kinds.count("backward_started") == 1

    def test_default_folder_is_outputs_script_stem(self, tmp_path, monkeypatch):
        """Without --out the files go to outputs/<script stem>/ under the current folder."""
        script = write_script(tmp_path, OUR_ENGINE, "my_model.py")
        monkeypatch.chdir(tmp_path)
        result = runner.invoke(app, ["--quiet", str(script)])
        assert result.exit_code == 0, result.output
        assert (tmp_path / "outputs" / "my_model" / "trace.jsonl").exists()

    def test_sink_option_chooses_what_is_written(self, tmp_path):
        """--sink json writes only the trace (and the findings)."""
        script = write_script(tmp_path, OUR_ENGINE)
        out = tmp_path / "out"
        result = runner.invoke(app, ["--out", str(out), "--sink", "json", str(script)])
        assert result.exit_code == 0, result.output
        assert sorted(p.name for p in out.iterdir()) == ["findings.json", "findings.txt", "trace.jsonl"]

    def test_script_exit_code_is_passed_through(self, tmp_path):
        """sys.exit(3) in the script makes trace-backward exit 3, with the trace kept."""
        script = write_script(tmp_path, OUR_ENGINE + "\n    sys.exit(3)\n")
        out = tmp_path / "out"
        result = runner.invoke(app, ["--out", str(out), "--quiet", str(script)])
        assert result.exit_code == 3
        assert load_events(out / "trace.jsonl")[-1].kind == "backward_finished"

    def test_script_exception_prints_its_traceback_keeps_the_trace_and_exits_1(self, tmp_path):
        """A failing script shows its own traceback, and the passes before the failure are on disk."""
        script = write_script(tmp_path, OUR_ENGINE + "\n    raise ValueError('boom')\n")
        out = tmp_path / "out"
        result = subprocess.run(
            [sys.executable, "-m", "autodiff_trace", "--out", str(out), "--quiet", str(script)],
            capture_output=True, text=True)
        assert result.returncode == 1
        assert "Traceback (most recent call last):" in result.stderr
        assert f'File "{script}", line 9, in <module>' in result.stderr
        assert "ValueError: boom" in result.stderr
        assert "autodiff_trace" not in result.stderr.split("Traceback")[1].split("ValueError")[0]
        assert load_events(out / "trace.jsonl")[-1].kind == "backward_finished"

    def test_traceback_from_a_user_engine_shows_only_user_frames(self, tmp_path):
        """An error raised in the user's own backward function: the traceback shows the
        script's frames, none of the tool's (the adapter calls the closure)."""
        script = write_script(tmp_path, """
            class Node:
                def __init__(self, value, parents=()):
                    self.value = value
                    self.grad = 0.0
                    self.parents = parents
                    self.backward_fn = None

            def mul(a, b):
                out = Node(a.value * b.value, (a, b))
                def backward():
                    a.grad += out.grad * b.value
                    raise RuntimeError("rule broke")
                out.backward_fn = backward
                return out

            x = Node(2.0)
            y = mul(x, x)
            y.grad = 1.0
            y.backward_fn()
        """)
        result = subprocess.run(
            [sys.executable, "-m", "autodiff_trace", "--out", str(tmp_path / "o"), "--quiet",
             str(script)], capture_output=True, text=True)
        assert result.returncode == 1
        shown = result.stderr.split("Traceback (most recent call last):")[1].split("RuntimeError")[0]
        assert "line 20, in <module>" in shown and "line 13, in backward" in shown
        assert "autodiff_trace" not in shown

    def test_engine_option_naming_no_class_says_so(self, tmp_path):
        """--engine naming a class the run never defines or imports is reported after the run."""
        script = write_script(tmp_path, OUR_ENGINE)
        result = runner.invoke(app, ["--engine", "nowhere:Node", "--out", str(tmp_path / "o"),
                                     str(script)])
        assert result.exit_code == 0
        assert "No class Node was defined or imported from nowhere while tracing" in result.output

    def test_malformed_engine_option_is_one_line_and_exit_2(self, tmp_path):
        """--engine without module:Class stops before the script runs, in one line."""
        script = write_script(tmp_path, OUR_ENGINE)
        result = runner.invoke(app, ["--engine", "Node", "--out", str(tmp_path / "o"), str(script)])
        assert result.exit_code == 2
        assert result.output == ("trace-backward: --engine expects module:Class (e.g. "
                                 "micrograd.engine:Value or my_script:Node), got 'Node'\n")

    def test_keyboard_interrupt_keeps_the_trace(self, tmp_path):
        """Ctrl-C in the script ends the run with 130 and a readable trace."""
        script = write_script(tmp_path, OUR_ENGINE + "\n    raise KeyboardInterrupt\n")
        out = tmp_path / "out"
        result = runner.invoke(app, ["--out", str(out), "--quiet", str(script)])
        assert result.exit_code == 130
        assert load_events(out / "trace.jsonl")[-1].kind == "backward_finished"

    def test_strict_fails_on_error_findings(self, tmp_path):
        """--strict turns an error-level finding into exit code 1."""
        script = write_script(tmp_path, """
            from autodiff_trace import Value
            x = Value(1e308)
            y = x * 10
            y.backward()
        """)
        out = tmp_path / "out"
        relaxed = runner.invoke(app, ["--out", str(out), "--quiet", str(script)])
        strict = runner.invoke(app, ["--out", str(out), "--quiet", "--strict", str(script)])
        findings = json.loads((out / "findings.json").read_text())
        assert any(f["severity"] == "error" for f in findings)
        assert (relaxed.exit_code, strict.exit_code) == (0, 1)

    def test_subprocess_run_of_the_installed_command(self, tmp_path):
        """The trace-backward console script runs end to end in a fresh process."""
        script = write_script(tmp_path, OUR_ENGINE)
        exe = Path(sys.executable).parent / "trace-backward"
        command = [str(exe)] if exe.exists() else [sys.executable, "-m", "autodiff_trace"]
        result = subprocess.run([*command, "--out", str(tmp_path / "o"), str(script)],
                                capture_output=True, text=True, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "grad 6.0" in result.stdout


class TestErrors:
    def test_missing_script_is_one_line_and_exit_2(self, tmp_path):
        """A script that does not exist: one line naming it, exit 2."""
        result = runner.invoke(app, [str(tmp_path / "nope.py")])
        assert result.exit_code == 2
        assert result.output.strip() == f"trace-backward: no such script: {tmp_path / 'nope.py'} (give the path of a Python file)"

    def test_folder_instead_of_script(self, tmp_path):
        """A folder is refused in one line."""
        result = runner.invoke(app, [str(tmp_path)])
        assert result.exit_code == 2 and "is a folder" in result.output

    @pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
    def test_unreadable_script(self, tmp_path):
        """A script without read permission is refused in one line."""
        script = write_script(tmp_path, OUR_ENGINE)
        script.chmod(0)
        result = runner.invoke(app, [str(script)])
        assert result.exit_code == 2 and "cannot read" in result.output

    def test_unwritable_output_folder_is_one_clear_line(self, tmp_path):
        """An output folder that cannot be created says so and suggests --out."""
        script = write_script(tmp_path, OUR_ENGINE)
        blocker = tmp_path / "file"
        blocker.write_text("")
        result = runner.invoke(app, ["--out", str(blocker / "out"), str(script)])
        assert result.exit_code == 2
        assert "cannot create the output folder" in result.output and "--out" in result.output

    def test_bad_attr_option(self, tmp_path):
        """--attr without KEY=NAME explains the form."""
        script = write_script(tmp_path, OUR_ENGINE)
        result = runner.invoke(app, ["--attr", "grad", str(script)])
        assert result.exit_code == 2 and "should read KEY=NAME" in result.output

    def test_script_without_autodiff_nodes_says_what_was_looked_for(self, tmp_path):
        """A script with no engine at all gets told how to point the tool at its class."""
        script = write_script(tmp_path, "print('hello')\n")
        result = runner.invoke(app, ["--out", str(tmp_path / "o"), str(script)])
        assert result.exit_code == 0
        assert "hello" in result.output
        assert "--engine" in result.output


class TestHelp:
    def test_help_shows_an_example_and_the_options(self):
        """--help explains the command with an example."""
        result = runner.invoke(app, ["--help"])
        assert result.exit_code == 0
        for words in ("trace-backward examples/notebook_bug.py", "--sink", "--pass", "--strict",
                      "--check-grads", "--max-nodes", "--delay", "--live"):
            assert words in result.output

    def test_version(self):
        """--version prints the version."""
        result = runner.invoke(app, ["--version"])
        assert result.exit_code == 0 and result.output.startswith("autodiff_trace ")


PACKAGE_MAIN = """
    import sys
    from autodiff_trace import Value
    x = Value(3.0)
    y = x * x
    y.backward()
    print("name", __name__, "args", sys.argv[1:])
"""


class TestConventions:
    def test_dash_h_is_help_not_a_script(self):
        """-h prints the help, as --help does."""
        result = runner.invoke(app, ["-h"], prog_name="trace-backward")
        assert result.exit_code == 0
        assert "Usage: trace-backward [OPTIONS] [SCRIPT] [ARGS]..." in result.output

    def test_dash_m_runs_a_module_as_python_does(self, tmp_path, monkeypatch):
        """-m package.module runs it as __main__ with the arguments after it, from the current folder."""
        (tmp_path / "pkg").mkdir()
        write_script(tmp_path / "pkg", "", "__init__.py")
        write_script(tmp_path / "pkg", PACKAGE_MAIN, "mod.py")
        monkeypatch.chdir(tmp_path)
        result = runner.invoke(app, ["--out", "o", "-m", "pkg.mod", "a", "--out", "b"])
        assert result.exit_code == 0, result.output
        assert "name __main__ args ['a', '--out', 'b']" in result.output
        assert (tmp_path / "o" / "pass_1.svg").exists() and not (tmp_path / "b").exists()

    def test_dash_m_of_a_missing_module_is_one_line(self, tmp_path, monkeypatch):
        """-m naming no importable module: one line, exit 2."""
        monkeypatch.chdir(tmp_path)
        result = runner.invoke(app, ["-m", "no_such_module_here"])
        assert result.exit_code == 2
        assert result.output == ("trace-backward: no module named no_such_module_here (run from "
                                 "the folder that holds it, or install it)\n")

    def test_a_folder_with_main_runs_as_python_folder_does(self, tmp_path):
        """A folder holding __main__.py runs it, as `python folder` does."""
        (tmp_path / "app").mkdir()
        write_script(tmp_path / "app", PACKAGE_MAIN, "__main__.py")
        result = runner.invoke(app, ["--out", str(tmp_path / "o"), "--quiet", str(tmp_path / "app"), "x"])
        assert result.exit_code == 0, result.output
        assert "name __main__ args ['x']" in result.output
        assert (tmp_path / "o" / "trace.jsonl").exists()

    def test_python_dash_m_autodiff_trace_runs_a_script(self, tmp_path):
        """`python -m autodiff_trace script.py` is trace-backward."""
        script = write_script(tmp_path, OUR_ENGINE)
        done = subprocess.run([sys.executable, "-m", "autodiff_trace", "--out", str(tmp_path / "o"),
                               "--quiet", str(script), "z"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "grad 6.0 args ['z']" in done.stdout

    def test_flags_show_no_value_in_help(self):
        """Boolean options are shown as bare flags: no <bool> anywhere in --help."""
        result = runner.invoke(app, ["--help"], env={"COLUMNS": "120"})
        assert result.exit_code == 0
        assert "<bool>" not in result.output
        assert "Options go before SCRIPT; everything after SCRIPT is passed to it." in result.output

    def test_a_flag_takes_no_value(self, tmp_path):
        """`--quiet true s.py` is not a run of a script named true: one line says how to write it."""
        script = write_script(tmp_path, OUR_ENGINE)
        result = runner.invoke(app, ["--quiet", "true", str(script)])
        assert result.exit_code == 2
        assert result.output == (f"trace-backward: --quiet takes no value, so 'true' was read as "
                                 f"the script; write trace-backward --quiet {script}\n")

    def test_everything_after_the_script_is_the_scripts(self, tmp_path, monkeypatch):
        """`s.py --out x` gives --out x to the script; the files go to the default folder."""
        script = write_script(tmp_path, OUR_ENGINE)
        monkeypatch.chdir(tmp_path)
        result = runner.invoke(app, ["--quiet", str(script), "--out", "x"])
        assert result.exit_code == 0, result.output
        assert "args ['--out', 'x']" in result.output
        assert (tmp_path / "outputs" / "script" / "trace.jsonl").exists() and not (tmp_path / "x").exists()

    @pytest.mark.parametrize("option", ["--show-completion", "--install-completion"])
    def test_completion_options_are_not_script_names(self, option):
        """Shell-completion options are refused as unknown options, not run as scripts."""
        result = runner.invoke(app, [option])
        assert result.exit_code == 2
        assert result.output == (f"trace-backward: no such option: {option}; the options are "
                                 f"listed by trace-backward --help (they go before the script)\n")

    def test_quiet_also_silences_the_wrote_line(self, tmp_path):
        """--quiet prints nothing of the tool's own on a clean run."""
        script = write_script(tmp_path, OUR_ENGINE)
        result = runner.invoke(app, ["--quiet", "--out", str(tmp_path / "o"), str(script)])
        assert result.exit_code == 0
        assert result.output == "grad 6.0 args []\n"

    def test_strict_fails_when_nothing_could_be_traced(self, tmp_path):
        """A script with no traceable node exits 1 under --strict, 0 with the note otherwise."""
        script = write_script(tmp_path, "print('hello')\n")
        relaxed = runner.invoke(app, ["--out", str(tmp_path / "o"), str(script)])
        strict = runner.invoke(app, ["--out", str(tmp_path / "o"), "--strict", str(script)])
        assert (relaxed.exit_code, strict.exit_code) == (0, 1)
        assert "made no autodiff nodes" in relaxed.output and "made no autodiff nodes" in strict.output

    def test_open_launches_the_last_pass_svg(self, tmp_path, monkeypatch):
        """--open hands the last pass's SVG to the system viewer."""
        import click

        opened = []
        monkeypatch.setattr(click, "launch", lambda target, **kw: opened.append(target) or 0)
        script = write_script(tmp_path, OUR_ENGINE + "\n    y.backward()\n")
        result = runner.invoke(app, ["--open", "--quiet", "--out", str(tmp_path / "o"), str(script)])
        assert result.exit_code == 0, result.output
        assert opened == [str(tmp_path / "o" / "pass_2.svg")]

    def test_open_without_a_picture_says_so(self, tmp_path, monkeypatch):
        """--open with --sink json has nothing to open, and says so instead of opening anything."""
        import click

        monkeypatch.setattr(click, "launch", lambda target, **kw: pytest.fail("opened " + target))
        script = write_script(tmp_path, OUR_ENGINE)
        result = runner.invoke(app, ["--open", "--sink", "json", "--out", str(tmp_path / "o"), str(script)])
        assert "--open: no pass was drawn as SVG, so there is nothing to open" in result.output


class TestOneApp:
    def test_run_subcommand_is_trace_backward(self, tmp_path):
        """`autodiff-trace run` takes the same options and does the same run as trace-backward."""
        from autodiff_trace.frontends.cli import app as autodiff_trace

        script = write_script(tmp_path, OUR_ENGINE)
        result = runner.invoke(autodiff_trace, ["run", "--quiet", "--out", str(tmp_path / "o"),
                                                str(script), "a"])
        assert result.exit_code == 0, result.output
        assert result.output == "grad 6.0 args ['a']\n"
        assert (tmp_path / "o" / "trace.jsonl").exists()

    def test_one_version_for_both_names(self):
        """--version reads the same for autodiff-trace and trace-backward."""
        from autodiff_trace.frontends.cli import app as autodiff_trace

        assert runner.invoke(autodiff_trace, ["--version"]).output == runner.invoke(app, ["--version"]).output

    def test_magic_options_come_from_the_same_table(self):
        """Every run option marked for the magic is an option of %%trace_backward, with the same flags."""
        pytest.importorskip("IPython")
        from autodiff_trace.frontends.magic import PARSER
        from autodiff_trace.frontends.options import RUN_OPTIONS

        magic_flags = {flag for action in PARSER._actions for flag in action.option_strings}
        assert magic_flags == {f for o in RUN_OPTIONS if o.in_magic for f in o.flags}
