"""Faults around the output: an unwritable folder, a full disk.

The problem is said in one line naming the file and the fix, what was traced so far
stays readable, and the engine's own result is never changed by the tracing.
"""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autodiff_trace import JsonlSink, Value, load_events, trace
from autodiff_trace.frontends.cli import trace_backward as app
from autodiff_trace.sinks.dot import DotSink
from autodiff_trace.sinks.findings import FindingsSink
from autodiff_trace.sinks.recorder import Recorder

runner = CliRunner()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autodiff_trace", *args],
                          capture_output=True, text=True, timeout=60)


# -- where the files go -------------------------------------------------------------------
SCRIPT = """
from autodiff_trace import Value
x = Value(3.0)
y = x * x
y.backward()
print("grad", x.grad)
"""


@pytest.fixture
def script(tmp_path) -> Path:
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(SCRIPT))
    return path


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


class TestUnwritableOutputFolder:
    def test_a_folder_under_a_regular_file_is_a_one_line_usage_error(self, tmp_path, script):
        """--out under a file (unwritable even for root): exit 2, one line naming the folder and the fix."""
        (tmp_path / "a_file").write_text("")
        out = tmp_path / "a_file" / "out"
        result = runner.invoke(app, ["--out", str(out), str(script)])
        assert result.exit_code == 2
        assert result.output == (f"trace-backward: cannot create the output folder {out}: "
                                 f"Not a directory; choose another with --out\n")

    def test_a_regular_file_as_the_folder_is_a_one_line_usage_error(self, tmp_path, script):
        """--out naming an existing file: exit 2, one line."""
        out = tmp_path / "a_file"
        out.write_text("")
        result = runner.invoke(app, ["--out", str(out), str(script)])
        assert result.exit_code == 2
        assert result.output == (f"trace-backward: cannot create the output folder {out}: "
                                 f"File exists; choose another with --out\n")

    @pytest.mark.skipif(is_root(), reason="runs as root, which writes into read-only folders anyway; "
                                          "the two tests above and the next cover this as root")
    def test_a_read_only_folder_is_a_one_line_usage_error(self, tmp_path, script):
        """A folder without write permission: exit 2, one line, the script never runs."""
        out = tmp_path / "read_only"
        out.mkdir()
        out.chmod(0o555)
        try:
            result = runner.invoke(app, ["--out", str(out), str(script)])
        finally:
            out.chmod(0o755)
        assert result.exit_code == 2
        assert result.output == (f"trace-backward: cannot write to the output folder {out}; "
                                 f"choose another with --out\n")

    @pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux's /sys, a folder no "
                                                                   "one may create files in")
    def test_a_folder_nobody_can_write_is_a_one_line_usage_error(self, script):
        """/sys/kernel refuses new files even to root: exit 2 and one line, not a traceback."""
        result = run_cli("--out", "/sys/kernel", str(script))
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        assert result.stderr.startswith("trace-backward: cannot write to the output folder /sys/kernel")


class DiskFull(io.StringIO):
    """A text file that fills up ``room`` characters after its first line, as a full disk does."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room
        self.header = None  # the first line always fits: its length varies with sys.argv

    def write(self, text: str) -> int:
        if self.header is None:
            self.header = len(text)
        elif self.tell() + len(text) > self.header + self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(text)


needs_dev_full = pytest.mark.skipif(not Path("/dev/full").exists(),
                                    reason="needs /dev/full, the device whose every write fails "
                                           "with ENOSPC (Linux)")


class TestDiskFull:
    def test_a_full_disk_mid_trace_detaches_the_sink_with_one_line_and_the_grads_are_unchanged(
            self, capsys):
        """Writes fail after the header: one stderr line names the file and the fix; the run goes on.
        Lines go out in batches, so the failure shows when the pass's end writes them."""
        recorder = Recorder()
        with trace(sinks=[JsonlSink(DiskFull(room=50)), recorder]) as t:
            x = Value(3.0)
            y = x * x + x.sin()
            y.backward()
        assert x.grad == 6.0 + __import__("math").cos(3.0)
        assert recorder.events == t.events and t.events[-1].kind == "backward_finished"
        assert capsys.readouterr().err.splitlines() == [
            "autodiff_trace: JsonlSink failed on a backward_finished event (OSError: cannot write the "
            "trace to DiskFull: No space left on device; free some disk space); it is detached and "
            "the trace goes on without it"]

    @needs_dev_full
    def test_dev_full_as_the_trace_file_is_one_clear_error(self):
        """Opening a trace on /dev/full fails at once, naming the file and the fix."""
        with pytest.raises(OSError) as error:
            JsonlSink("/dev/full")
        assert str(error.value) == ("cannot write the trace to /dev/full: No space left on device; "
                                    "free some disk space")

    @needs_dev_full
    @pytest.mark.parametrize("name, message", [
        ("pass_1.svg", "autodiff_trace: DotSink failed on a backward_finished event (OSError: cannot "
                       "write the diagram {out}/pass_1.svg: No space left on device; free some disk "
                       "space); it is detached and the trace goes on without it"),
        ("pass_1.dot", "autodiff_trace: DotSink failed on a backward_finished event (OSError: cannot "
                       "write the diagram {out}/pass_1.dot: No space left on device; free some disk "
                       "space); it is detached and the trace goes on without it"),
        ("findings.json", "autodiff_trace: FindingsSink failed to close: cannot write the "
                          "findings to {out}/findings.json: No space left on device; free some disk space"),
        ("report.txt", "trace-backward: could not save the report in {out}: [Errno 28] No space "
                       "left on device"),
    ])
    def test_a_full_disk_under_one_output_is_one_line_and_a_failed_exit(
            self, tmp_path, script, name, message):
        """An output file on a full disk: its line names it, the script's output stands, the
        run exits 2 (an output is missing) and no empty file is left behind."""
        out = tmp_path / "out"
        out.mkdir()
        (out / name).symlink_to("/dev/full")
        done = run_cli("--out", str(out), "--no-live", str(script))
        assert done.returncode == 2
        assert done.stdout.startswith("grad 6.0\n")
        assert message.format(out=out) in done.stderr
        assert "Traceback" not in done.stderr
        assert (name == "trace.jsonl") or load_events(out / "trace.jsonl")[-1].kind == "backward_finished"
        assert [p.name for p in out.iterdir() if not p.is_symlink() and p.stat().st_size == 0] == []

    @needs_dev_full
    def test_a_full_disk_under_the_trace_file_is_one_line_from_the_cli(self, tmp_path, script):
        """trace.jsonl on a full disk: exit 2 with the sink's one line, no traceback."""
        out = tmp_path / "out"
        out.mkdir()
        (out / "trace.jsonl").symlink_to("/dev/full")
        done = run_cli("--out", str(out), "--no-live", str(script))
        assert "Traceback" not in done.stderr
        assert f"cannot write the trace to {out}/trace.jsonl: No space left on device" in done.stderr
        assert done.returncode == 2


class TestSinksOnAFullDisk:
    @needs_dev_full
    def test_dot_sink_says_which_picture_could_not_be_saved(self, tmp_path):
        """DotSink on a full disk raises one line naming the file (the tracer then detaches it)."""
        (tmp_path / "pass_1.dot").symlink_to("/dev/full")
        with pytest.raises(OSError, match=rf"^cannot write the diagram {tmp_path}/pass_1.dot: "
                                          r"No space left on device; free some disk space$"):
            sink = DotSink(tmp_path, formats=())
            for event in notebook_events():
                sink.handle(event)

    @needs_dev_full
    def test_findings_sink_says_which_file_could_not_be_saved(self, tmp_path):
        """FindingsSink.close on a full disk: one line naming findings.json."""
        (tmp_path / "findings.json").symlink_to("/dev/full")
        sink = FindingsSink(tmp_path)
        with pytest.raises(OSError, match=rf"^cannot write the findings to {tmp_path}/findings.json: "):
            sink.close()


def notebook_events() -> list:
    with trace() as t:
        x = Value(5.0, name="x")
        z = x + x
        z.backward()
    return t.events


