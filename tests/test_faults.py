"""Faults: a run stopped mid-backward, a cut trace file, a front end used in odd ways.

Whatever goes wrong around a traced run, what was traced so far stays readable, the
problem is said in one line naming the file and the fix, and the engine's own
result is never changed by the tracing.
"""

from __future__ import annotations

import json
import io
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from autodiff_trace import JsonlSink, TraceFileError, Value, diagram, engine, load_events, trace
from autodiff_trace.frontends.cli import trace_backward as app
from autodiff_trace.views.terminal.report import print_report
from autodiff_trace.sinks.recorder import Recorder

runner = CliRunner()
posix_signals = pytest.mark.skipif(not hasattr(signal, "SIGKILL"),
                                   reason="sends POSIX signals (SIGINT, SIGKILL) to a process")

# A learner's engine (the seed's vocabulary): each mul's closure can fail, be
# interrupted or kill the process after its first write, in the pass named by argv.
USER_ENGINE = """
import os, signal, sys

class Node:
    def __init__(self, val, parents=()):
        self.val, self.grad, self.parents = val, 0.0, parents
        self._backward = lambda: None

def mul(a, b):
    out = Node(a.val * b.val, (a, b))
    def _backward():
        a.grad += out.grad * b.val
        if a.val == 2.0 and PASS == FAIL_IN:
            {fault}
        b.grad += out.grad * a.val
    out._backward = _backward
    return out

def backward(root):
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
        elif id(node) not in seen:
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((p, False) for p in node.parents)
    root.grad = 1.0
    for node in reversed(order):
        node._backward()

FAIL_IN = int(sys.argv[1])
x = Node(2.0)
w = Node(3.0)
for PASS in (1, 2):
    x.grad = w.grad = 0.0
    y = mul(x, w)
    z = mul(y, w)
    backward(z)
    print("pass", PASS, "x.grad", x.grad)
"""

FAULTS = {
    "exception": 'raise RuntimeError("boom in the middle of backward")',
    "interrupt": "os.kill(os.getpid(), signal.SIGINT)",
    "kill": "os.kill(os.getpid(), signal.SIGKILL)",
}


def user_script(folder: Path, fault: str) -> Path:
    path = folder / f"{fault}.py"
    path.write_text(USER_ENGINE.replace("{fault}", FAULTS[fault]))
    return path


def _ctrl_c_as_at_a_terminal() -> None:
    """Ctrl-C raises KeyboardInterrupt in the child even when the tests were started where
    SIGINT is ignored (a background job without job control), as at a terminal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autodiff_trace", *args],
                          capture_output=True, text=True, timeout=60, preexec_fn=_ctrl_c_as_at_a_terminal)


@pytest.fixture
def ctrl_c_raises():
    """SIGINT raises KeyboardInterrupt in this process for the test, as at a terminal."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def kinds(events) -> list:
    return [e.kind for e in events]


def passes(events) -> list:
    """(pass_no, [kinds of its events]) in order."""
    out = []
    for e in events:
        if e.kind == "backward_started":
            out.append((e.pass_no, []))
        if out and getattr(e, "pass_no", None) == out[-1][0]:
            out[-1][1].append(e.kind)
    return out


@posix_signals
class TestStoppedMidBackward:
    def test_exception_in_a_user_closure_keeps_the_pass_up_to_it(self, tmp_path):
        """The script's traceback is shown, exit 1; the trace holds pass 1 and pass 2 up to the raise."""
        out = tmp_path / "out"
        done = run_cli("--out", str(out), "--sink", "json", "--quiet",
                       str(user_script(tmp_path, "exception")), "2")
        assert done.returncode == 1
        assert "RuntimeError: boom in the middle of backward" in done.stderr
        assert "pass 1 x.grad 9.0" in done.stdout
        events = load_events(out / "trace.jsonl")
        second = passes(events)[1][1]
        # z fires and writes y and w; y fires, writes x, then raises before writing w
        assert second == ["backward_started", "grad_accumulated", "backward_fn_fired",
                          "grad_accumulated", "grad_accumulated", "backward_fn_fired",
                          "grad_accumulated", "backward_finished"]
        assert events[-1].kind == "backward_finished"

    def test_ctrl_c_in_a_user_closure_keeps_the_trace_and_exits_130(self, tmp_path):
        """A real SIGINT mid-pass: exit 130, one line saying the trace is kept, the pass closed."""
        out = tmp_path / "out"
        done = run_cli("--out", str(out), "--sink", "json", "--quiet",
                       str(user_script(tmp_path, "interrupt")), "2")
        assert done.returncode == 130
        assert "trace-backward: interrupted; the trace so far is kept" in done.stderr
        assert "Traceback" not in done.stderr
        events = load_events(out / "trace.jsonl")
        assert [p for p, _ in passes(events)] == [1, 2]
        assert passes(events)[1][1][-1] == "backward_finished"
        assert json_lines_are_whole(out / "trace.jsonl")

    def test_killed_process_leaves_every_finished_pass_readable(self, tmp_path):
        """SIGKILL in pass 2 (no cleanup at all): pass 1, flushed when it ended, reads back whole."""
        out = tmp_path / "out"
        done = run_cli("--out", str(out), "--sink", "json", "--quiet",
                       str(user_script(tmp_path, "kill")), "2")
        assert done.returncode == -signal.SIGKILL
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a cut last line is allowed
            events = load_events(out / "trace.jsonl")
        first = passes(events)[0]
        assert first[0] == 1 and first[1][0] == "backward_started" and first[1][-1] == "backward_finished"
        assert diagram(events, 1).source.startswith("digraph pass_1 {")

    @pytest.mark.parametrize("how", ["exception", "interrupt"])
    def test_our_engine_stopped_mid_pass_closes_the_pass_and_the_tracer(self, tmp_path, how, ctrl_c_raises):
        """An exception or Ctrl-C inside Value.backward: the pass is closed, the file loads, tracing is off."""
        path = tmp_path / "trace.jsonl"
        sink = InterruptAfter(writes=3) if how == "interrupt" else Recorder()
        expected = KeyboardInterrupt if how == "interrupt" else TypeError
        with pytest.raises(expected):
            with trace(sinks=[sink, JsonlSink(path)]):
                x = Value(2.0, name="x")
                w = Value(3.0, name="w")
                y = x * w
                z = y * y
                if how == "exception":
                    w.data = "3"  # a user's mistake: the next mul rule meets a string
                z.backward()
        assert engine.value._tracer is None
        events = load_events(path)
        assert events[-1].kind == "backward_finished"
        assert kinds(events).count("backward_started") == 1
        assert 0 < kinds(events).count("grad_accumulated") < 5  # the pass was cut short


class InterruptAfter(Recorder):
    """A sink that presses Ctrl-C (a real SIGINT) after seeing ``writes`` grad writes."""

    def __init__(self, writes: int) -> None:
        super().__init__()
        self.writes = writes

    def handle(self, event) -> None:
        super().handle(event)
        if event.kind == "grad_accumulated":
            self.writes -= 1
            if self.writes == 0:
                os.kill(os.getpid(), signal.SIGINT)


def json_lines_are_whole(path: Path) -> bool:
    return path.read_bytes().endswith(b"\n")


# -- a trace file cut short -------------------------------------------------------------
def is_site_line(line: bytes) -> bool:
    """A line naming a site for the node lines after it (not an event)."""
    return line.startswith(b'{"site_no":')


@pytest.fixture(scope="module")
def notebook_trace(tmp_path_factory):
    """The notebook's two passes written as JSON Lines: (path, bytes, events)."""
    path = tmp_path_factory.mktemp("cut") / "trace.jsonl"
    with trace(sinks=[JsonlSink(path)]) as t:
        x = Value(5.0, name="x")
        y = Value(4.0, name="y")
        z = x + x
        z.backward()
        z = (x + y) * (x + y)
        z.backward()
    return path, path.read_bytes(), t.events


class TestTruncatedTrace:
    def test_every_cut_after_the_header_reads_as_a_prefix(self, notebook_trace, tmp_path):
        """Cut at any byte: the events read are the first k events, with a warning iff a line is cut."""
        _, data, events = notebook_trace
        lines = data.split(b"\n")
        header_end = data.index(b"\n") + 1
        cut_file = tmp_path / "cut.jsonl"
        for size in range(header_end, len(data) + 1):
            cut = data[:size]
            cut_file.write_bytes(cut)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                read = load_events(cut_file)
            assert read == events[:len(read)], size
            whole = cut.count(b"\n") - 1  # lines after the header that kept their newline
            rest = cut[cut.rindex(b"\n") + 1:]  # what is left of the next line
            at_events = sum(not is_site_line(line) for line in lines[1:whole + 1])
            complete = bool(rest) and rest == lines[whole + 1]  # only its newline is missing
            assert len(read) == at_events + (complete and not is_site_line(rest)), size
            assert [str(w.message) for w in caught if "cut short" in str(w.message)] == (
                [f"{cut_file}:{whole + 2}: the last line is cut short (the traced program "
                 f"stopped mid-write); the events before it are kept"] if rest and not complete else []), size

    def test_a_pass_cut_short_is_reported_and_drawn(self, notebook_trace, tmp_path):
        """A trace ending inside pass 2 prints that pass as cut short and still draws it."""
        _, data, events = notebook_trace
        cut_at = next(i for i, e in enumerate(events) if e.kind == "backward_fn_fired" and e.pass_no == 2)
        lines = data.split(b"\n")
        event_lines = [i for i, line in enumerate(lines) if i and line and not is_site_line(line)]
        cut_file = tmp_path / "cut.jsonl"
        cut_file.write_bytes(b"\n".join(lines[:event_lines[cut_at] + 1]) + b"\n")
        read = load_events(cut_file)
        assert read == events[:cut_at + 1]
        console = Console(file=io.StringIO(), width=100, color_system=None)
        print_report(read, console)
        assert "5 nodes reachable · 1 fired · 1 grad write · cut short" in console.file.getvalue()
        assert diagram(read, 2).source.startswith("digraph pass_2 {")

    @pytest.mark.parametrize("content, message", [
        (b"", "the file is empty; it holds no trace"),
        (b'{"kind":"header","sche', "not an autodiff_trace trace (the first line must be its header)"),
    ])
    def test_a_file_cut_inside_its_header_is_one_clear_error(self, tmp_path, content, message):
        """An empty file or a cut header is a TraceFileError saying what the file lacks."""
        path = tmp_path / "cut.jsonl"
        path.write_bytes(content)
        with pytest.raises(TraceFileError) as error:
            load_events(path)
        assert str(error.value).endswith(message)

    def test_a_damaged_line_in_the_middle_names_its_line_number(self, notebook_trace, tmp_path):
        """A cut line followed by more lines is damage, not a crash: the error names the line."""
        _, data, _ = notebook_trace
        lines = data.split(b"\n")
        lines[3] = lines[3][:10]
        path = tmp_path / "damaged.jsonl"
        path.write_bytes(b"\n".join(lines))
        with pytest.raises(TraceFileError, match=rf"^{path}:4: "):
            load_events(path)


ROOT = Path(__file__).resolve().parent.parent
SEED_NOTEBOOK = ROOT / "examples" / "notebook_bug.ipynb"
NODES = """
from autodiff_trace import Value
x = Value(3.0, name="x")
y = x * x
y.backward()
"""


class TestFrontEndRobustness:
    def test_a_script_that_changes_folder_writes_every_file_to_the_one_folder(self, tmp_path):
        """The output folder is fixed at start: os.chdir in the script splits nothing."""
        (tmp_path / "elsewhere").mkdir()
        path = tmp_path / "wanders.py"
        path.write_text("import os\nos.chdir('elsewhere')\n" + NODES + "y.backward()\n")
        done = subprocess.run([sys.executable, "-m", "autodiff_trace", "--no-live", str(path)],
                              capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        folder = tmp_path / "outputs" / "wanders"
        assert {p.name for p in folder.iterdir()} >= {"trace.jsonl", "pass_1.svg", "pass_2.svg",
                                                      "findings.json", "report.txt"}
        assert not (tmp_path / "elsewhere" / "outputs").exists()
        assert f"trace-backward: wrote {folder}/trace.jsonl" in done.stderr

    def test_a_script_and_a_notebook_of_one_name_write_to_different_folders(self, tmp_path, monkeypatch):
        """x.py goes to outputs/x, x.ipynb to outputs/x_ipynb."""
        pytest.importorskip("nbformat")
        (tmp_path / "x.py").write_text(NODES)
        (tmp_path / "x.ipynb").write_bytes(SEED_NOTEBOOK.read_bytes())
        monkeypatch.chdir(tmp_path)
        for name in ("x.py", "x.ipynb"):
            assert runner.invoke(app, ["--quiet", name]).exit_code == 0
        scripts = [json.loads((tmp_path / "outputs" / f / "trace.jsonl").read_text().splitlines()[0])
                   ["script"] for f in ("x", "x_ipynb")]
        assert scripts == ["x.py", "x.ipynb"]

    def test_a_script_that_replaces_print_does_not_break_the_tool(self, tmp_path):
        """After a script breaks builtins.print, the tool's own lines still go out."""
        path = tmp_path / "noprint.py"
        path.write_text(NODES + "import builtins\n"
                        "def broken(*args, **kwargs):\n    raise RuntimeError('print is off')\n"
                        "builtins.print = broken\n")
        done = run_cli("--out", str(tmp_path / "o"), "--no-live", str(path))
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        assert f"trace-backward: wrote {tmp_path / 'o'}/trace.jsonl" in done.stderr

    @posix_signals
    def test_sigterm_is_handled_like_ctrl_c(self, tmp_path):
        """SIGTERM mid-backward: the pass is closed, the findings and report are written, exit 143."""
        path = tmp_path / "term.py"
        path.write_text(USER_ENGINE.replace("{fault}", "print('waiting', flush=True); "
                                                       "import time; time.sleep(60)"))
        out = tmp_path / "out"
        process = subprocess.Popen([sys.executable, "-m", "autodiff_trace", "--out", str(out),
                                    "--no-live", str(path), "2"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while "waiting" not in process.stdout.readline():
            pass
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 143, err
        assert "trace-backward: terminated; the trace so far is kept" in err
        events = load_events(out / "trace.jsonl")
        assert [p for p, _ in passes(events)] == [1, 2] and events[-1].kind == "backward_finished"
        assert (out / "findings.json").exists() and (out / "report.txt").exists()

    def test_nbformat_is_a_core_dependency(self):
        """Reading a notebook needs no extra: nbformat is installed with the package."""
        import tomllib

        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        assert any(d.startswith("nbformat") for d in project["dependencies"])
        assert not any("nbformat" in d for d in project["optional-dependencies"]["notebook"])

    def test_a_magic_output_folder_that_cannot_exist_is_one_line(self, shell):
        """%%trace_backward --out /dev/null/sub: a one-line usage error, no traceback."""
        from IPython.utils.capture import capture_output

        with capture_output() as captured:
            result = shell.run_cell("%%trace_backward --out /dev/null/sub\nx = 1\n")
        assert not result.success
        text = captured.stdout + captured.stderr
        assert "UsageError: cannot create the output folder /dev/null/sub" in text
        assert "Traceback" not in text
