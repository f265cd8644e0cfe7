"""The status line a long run shows on a terminal."""

import io

from rich.console import Console

from autodiff_trace import Value, trace
from autodiff_trace.sinks.progress import ProgressSink


def terminal() -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=60, color_system=None)


class TestProgressSink:
    def test_counts_events_and_passes_on_a_terminal(self):
        """Every few events, and when a pass ends, the line is redrawn with the counts so far."""
        console = terminal()
        sink = ProgressSink(console, every=5, after=0)
        with trace([sink]):
            x = Value(2.0)
            y = (x * x).tanh()
            y.backward()
        assert sink.describe() == f"tracing: {sink.events:,} events, 1 backward pass"
        drawn = console.file.getvalue()
        assert f"tracing: {sink.events:,} events, 1 backward pass" in drawn  # the pass's end

    def test_draws_nothing_when_not_a_terminal(self):
        """Piped output gets no status line and no control codes."""
        console = Console(file=io.StringIO(), width=60)
        sink = ProgressSink(console, every=1)
        with trace([sink]):
            (Value(1.0) * 2).backward()
        assert console.file.getvalue() == ""
        assert sink.events > 0

    def test_a_quick_run_shows_no_line(self):
        """Before ``after`` seconds have passed the line does not appear, even on a terminal."""
        console = terminal()
        sink = ProgressSink(console, every=1, after=60)
        with trace([sink]):
            (Value(1.0) * 2).backward()
        assert console.file.getvalue() == ""
        assert sink.events > 0
