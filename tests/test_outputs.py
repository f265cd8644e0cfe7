"""Outputs: nothing lost, nothing overwritten.

Every command writes a file to a temporary file beside it and renames it only over a
regular file or nothing: a symlink writes its target, a character device or a FIFO
is written directly, a socket or a block device is refused in one line. A run holds
its output folder while it runs: a second run at the same time writes to the next
free folder (``outputs/s-2``) and says so. A full disk leaves no empty file behind
and fails the run.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autodiff_trace import Value, load_events, traced, traced_block
from autodiff_trace.frontends.cli import app

runner = CliRunner()
EXAMPLE_TRACE = Path(__file__).resolve().parent.parent / "outputs" / "notebook_bug" / "trace.jsonl"

SCRIPT = """
import time
from autodiff_trace import Value

x = Value(3.0, name="x")
y = x * x
time.sleep({pause})
y.backward()
print("grad", x.grad)
"""

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="makes device nodes, which needs root")


@pytest.fixture
def trace_file(tmp_path) -> Path:
    copy = tmp_path / "trace.jsonl"
    copy.write_bytes(EXAMPLE_TRACE.read_bytes())
    return copy


def script(folder: Path, pause: float = 0.0) -> Path:
    path = folder / "s.py"
    path.write_text(SCRIPT.format(pause=pause))
    return path


def export(trace: Path, target: Path):
    return runner.invoke(app, ["export", str(trace), "--chrome", str(target)])


def is_timeline(text: str) -> bool:
    return bool(json.loads(text)["traceEvents"])


def leftovers(folder: Path, *keep: str) -> list:
    """Files in ``folder`` other than ``keep``: temporary files, empty files."""
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


class TestExportNeverReplacesASpecialFile:
    def test_a_symlink_is_followed_and_stays_a_symlink(self, tmp_path, trace_file):
        """--chrome LINK writes the file the link points to; the link itself stays."""
        real, link = tmp_path / "real.json", tmp_path / "link.json"
        real.write_text("old")
        link.symlink_to(real.name)
        result = export(trace_file, link)
        assert result.exit_code == 0, result.output
        assert link.is_symlink() and os.readlink(link) == "real.json"
        assert is_timeline(real.read_text())

    def test_a_fifo_is_written_through_and_stays_a_fifo(self, tmp_path, trace_file):
        """--chrome FIFO feeds the reader at its other end, as a shell redirection would."""
        fifo = tmp_path / "timeline"
        os.mkfifo(fifo)
        received = []
        reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
        reader.start()
        result = export(trace_file, fifo)
        reader.join(timeout=30)
        assert result.exit_code == 0, result.output
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
        assert is_timeline(received[0])

    def test_dev_stdout_writes_the_timeline_down_the_pipe(self, tmp_path, trace_file):
        """--chrome /dev/stdout (a link to a pipe here) sends the timeline to the reader."""
        code, out, err = finish(run_cli("export", str(trace_file), "--chrome", "/dev/stdout",
                                        cwd=tmp_path))
        assert code == 0, err
        assert is_timeline(out)

    @needs_root
    def test_a_character_device_is_written_directly(self, tmp_path, trace_file):
        """A copy of /dev/null as the target takes the timeline and stays a device."""
        null = tmp_path / "null"
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        result = export(trace_file, null)
        assert result.exit_code == 0, result.output
        assert stat.S_ISCHR(os.lstat(null).st_mode)
        assert leftovers(tmp_path, "null", "trace.jsonl") == []

    @needs_root
    def test_a_full_device_is_one_line_and_stays_a_device(self, tmp_path, trace_file):
        """A copy of /dev/full: exit 2, one line naming it and the fix; the device is untouched."""
        full = tmp_path / "full"
        os.mknod(full, stat.S_IFCHR | 0o666, os.makedev(1, 7))
        result = export(trace_file, full)
        assert result.exit_code == 2
        assert result.output == (f"autodiff-trace: cannot write the timeline to {full}: No space "
                                 f"left on device; free some disk space\n")
        assert stat.S_ISCHR(os.lstat(full).st_mode)
        assert leftovers(tmp_path, "full", "trace.jsonl") == []

    def test_a_socket_is_refused_in_one_line(self, tmp_path, trace_file):
        """A UNIX socket cannot take a file: exit 2, one line, the socket stays."""
        path = tmp_path / "sock"
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        try:
            result = export(trace_file, path)
        finally:
            server.close()
        assert result.exit_code == 2
        assert result.output == (f"autodiff-trace: cannot write the timeline to {path}: it is a "
                                 f"socket, not a file; give the path of a file\n")
        assert stat.S_ISSOCK(os.lstat(path).st_mode)

    def test_a_regular_file_is_replaced_whole_and_keeps_its_permissions(self, tmp_path, trace_file):
        """An existing file gets the new timeline and keeps its mode; no temporary file stays."""
        target = tmp_path / "timeline.json"
        target.write_text("old")
        target.chmod(0o640)
        result = export(trace_file, target)
        assert result.exit_code == 0, result.output
        assert is_timeline(target.read_text())
        assert stat.S_IMODE(target.stat().st_mode) == 0o640
        assert leftovers(tmp_path, "timeline.json", "trace.jsonl") == []


def run_cli(*args: str, cwd: Path, full_disk: bool = False) -> subprocess.Popen:
    """The command in a process of its own; ``full_disk`` lets it create files but not
    write a byte into them (a file-size limit of 0), as on a full disk."""
    def no_room() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process

    return subprocess.Popen([sys.executable, "-m", "autodiff_trace.frontends.cli", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=no_room if full_disk else None)


def finish(process: subprocess.Popen):
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


class TestConcurrentRuns:
    def test_two_runs_at_once_into_one_folder_both_keep_their_results(self, tmp_path):
        """Two terminals, one script, same moment: both succeed, the second writes to
        outputs/s-2 and says so, and both traces are whole."""
        script(tmp_path, pause=1.5)
        first = run_cli("run", "s.py", cwd=tmp_path)
        second = run_cli("run", "s.py", cwd=tmp_path)
        results = [finish(first), finish(second)]
        assert [code for code, _, _ in results] == [0, 0], results
        moved = [err for _, _, err in results if "in use by another run" in err]
        assert len(moved) == 1, results
        assert ("trace-backward: outputs/s is in use by another run; writing to outputs/s-2 instead\n"
                in moved[0])
        for folder in ("outputs/s", "outputs/s-2"):
            events = load_events(tmp_path / folder / "trace.jsonl")
            assert [e.kind for e in events].count("backward_finished") == 1
            assert not (tmp_path / folder / ".lock").exists()

    def test_runs_one_after_another_reuse_the_folder(self, tmp_path):
        """A run that starts after the last one ended writes to the same folder again."""
        script(tmp_path)
        for _ in range(2):
            code, _, err = finish(run_cli("run", "s.py", cwd=tmp_path))
            assert code == 0 and "in use" not in err, err
        assert sorted(p.name for p in (tmp_path / "outputs").iterdir()) == ["s"]


class TestFullDisk:
    def test_a_run_on_a_full_disk_leaves_no_empty_file_and_fails(self, tmp_path):
        """Every write fails: the script's own output stands, the run exits 2 with one line
        per lost output, and no empty file is left in the folder."""
        script(tmp_path)
        code, out, err = finish(run_cli("run", "--no-live", "s.py", cwd=tmp_path, full_disk=True))
        assert code == 2, err
        assert "Traceback" not in err
        folder = tmp_path / "outputs" / "s"
        assert [p.name for p in folder.iterdir() if p.stat().st_size == 0] == []

    def test_html_on_a_full_disk_leaves_no_file_and_fails(self, tmp_path, trace_file):
        """The player on a full disk: exit 2, one line, and no empty page."""
        code, _, err = finish(run_cli("html", str(trace_file), "--out", "page.html",
                                      cwd=tmp_path, full_disk=True))
        assert code == 2
        assert err == ("autodiff-trace: cannot write the player to page.html: File too large; "
                       "choose a writable folder\n")
        assert leftovers(tmp_path, "trace.jsonl") == []

    def test_export_on_a_full_disk_keeps_the_old_file(self, tmp_path, trace_file):
        """A failed export leaves the previous timeline as it was, and nothing beside it."""
        target = tmp_path / "timeline.json"
        target.write_text("previous")
        code, _, err = finish(run_cli("export", str(trace_file), "--chrome", str(target),
                                      cwd=tmp_path, full_disk=True))
        assert code == 2 and err.count("\n") == 1, err
        assert target.read_text() == "previous"
        assert leftovers(tmp_path, "trace.jsonl", "timeline.json") == []


class TestTracedGenerators:
    def test_a_generator_function_is_refused_with_the_fix(self):
        """@traced on a generator would trace nothing (its body runs later): a TypeError names
        traced_block as the way to trace its loop."""
        with pytest.raises(TypeError, match=r"^@traced cannot trace steps\(\), a generator "
                                            r"function: .* `with traced_block\(\):`"):
            @traced
            def steps():
                yield Value(1.0)

    def test_an_async_function_is_refused_too(self):
        """A coroutine function's body also runs after the call returns: refused the same way."""
        with pytest.raises(TypeError, match=r"^@traced cannot trace step\(\), an async function"):
            @traced
            async def step():
                return Value(1.0)

    def test_a_plain_function_is_still_traced(self, tmp_path):
        """The check keeps ordinary functions as they were: traced, their result unchanged."""
        @traced(out=tmp_path, sinks=("json",))
        def square(v):
            y = v * v
            y.backward()
            return y.data

        assert square(Value(3.0)) == 9.0
        assert "backward_finished" in [e.kind for e in load_events(tmp_path / "trace.jsonl")]


class TestSessionFindings:
    def test_a_block_without_a_folder_has_no_findings_sink(self):
        """Without ``out`` no findings file is written, so ``findings`` is None, not an empty list."""
        with traced_block(sinks=()) as session:
            x = Value(2.0)
            (x * x).backward()
        assert session.findings is None
        assert session.written == []

    def test_a_block_with_a_folder_holds_the_findings_found(self, tmp_path):
        """With ``out`` the findings are the ones written to findings.json."""
        with traced_block(tmp_path, sinks=("json",)) as session:
            x = Value(2.0)
            y = x * x
            y.backward()
            y.backward()  # grads accumulate across passes: a finding
        written = json.loads((tmp_path / "findings.json").read_text())
        assert session.findings is not None and len(written) >= 1
        assert {f.finding for f in session.findings.findings} == {c["finding"] for c in written}
