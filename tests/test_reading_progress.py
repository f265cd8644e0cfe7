"""Replay commands show a progress bar on a terminal while they read a big trace file."""

from __future__ import annotations

import io

from rich.console import Console
from typer.testing import CliRunner

from autodiff_trace import JsonlSink, Value, trace
from autodiff_trace.core import tracefile
from autodiff_trace.core.tracefile import iter_events
from autodiff_trace.frontends.cli import app
from autodiff_trace.frontends.reading import ReadingProgress


def chain_trace(folder, length: int = 5000):
    """A trace of one pass over a chain: about 5 events per op."""
    path = folder / "trace.jsonl"
    with trace([JsonlSink(path)], record=False):
        x = Value(1.0, name="x")
        y = x
        for _ in range(length):
            y = y * 1.0
        y.backward()
    return path


def terminal() -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=100)


class TestReadingProgress:
    def test_a_long_read_on_a_terminal_shows_a_bar_named_after_the_file(self, tmp_path):
        """Once the read has lasted ``after`` seconds, a bar reads `reading trace.jsonl`."""
        path = chain_trace(tmp_path)
        console = terminal()
        with ReadingProgress(console, after=0.0) as progress:
            count = sum(1 for _ in iter_events(path))
        assert count > 20_000 and progress.reports >= 2
        assert "reading trace.jsonl" in console.file.getvalue()

    def test_a_quick_read_shows_nothing(self, tmp_path):
        """Reading for less than a second draws no bar."""
        path = chain_trace(tmp_path)
        console = terminal()
        with ReadingProgress(console, after=60.0) as progress:
            sum(1 for _ in iter_events(path))
        assert progress.reports >= 2 and console.file.getvalue() == ""

    def test_nothing_is_drawn_when_stderr_is_not_a_terminal(self, tmp_path):
        """A file or a pipe never receives the bar."""
        path = chain_trace(tmp_path)
        console = Console(file=io.StringIO(), force_terminal=False)
        with ReadingProgress(console, after=0.0):
            sum(1 for _ in iter_events(path))
        assert console.file.getvalue() == ""

    def test_the_listener_leaves_when_the_command_ends(self, tmp_path):
        """After a replay command (even one that fails) no listener is left on the reader."""
        path = chain_trace(tmp_path, length=10)
        assert CliRunner().invoke(app, ["stats", str(path)]).exit_code == 0
        assert CliRunner().invoke(app, ["stats", str(tmp_path / "missing.jsonl")]).exit_code == 2
        assert tracefile.READING == []

    def test_the_commands_output_is_what_it_was(self, tmp_path):
        """stats prints the same numbers with the listener as without it."""
        path = chain_trace(tmp_path, length=3000)
        from autodiff_trace.replay.summary import format_stats, trace_stats

        result = CliRunner().invoke(app, ["stats", str(path)])
        assert result.exit_code == 0 and result.stdout == format_stats(trace_stats(iter_events(path)))
