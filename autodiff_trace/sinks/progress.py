"""A one-line status on a terminal while a long script runs: events and passes so far.

It appears once the run has lasted a second (a quick run shows none) and is redrawn
every few thousand events (or captured batch, counted at once) and at the end of each pass.
"""

from __future__ import annotations

import sys
import time
from typing import Optional

from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner

from ..core.events import Event
from ..core.text import plural

__all__ = ["ProgressSink"]


class ProgressSink:
    """Shows ``tracing: 120,000 events, 3 backward passes`` and keeps it current.

    Args:
        console: where to draw; nothing is drawn unless it is a terminal.
        every: events between two updates of the line (redrawing costs more than counting).
        after: seconds from the first event before the line appears.
    """

    def __init__(self, console: Console, *, every: int = 5000, after: float = 1.0) -> None:
        self.console = console
        self.every = every
        self.after = after
        self._began: Optional[float] = None
        self.events = 0
        self.passes = 0
        self._live: Optional[Live] = None
        self._spinner = Spinner("dots")

    def handle(self, event: Event) -> None:
        self.events += 1
        kind = event.kind
        if kind == "backward_started":
            self.passes += 1
            if self._began is None:
                self._began = time.perf_counter()
        elif self._began is None:
            self._began = time.perf_counter()
        if self.events % self.every == 0 or kind == "backward_finished":
            self._redraw()

    def _redraw(self) -> None:
        """Show the line, once the run has lasted ``after`` seconds, on a terminal only."""
        if self.console.is_terminal:
            if self._live is None and time.perf_counter() - self._began < self.after:
                return
            self._spinner.update(text=self.describe())
            if self._live is None:
                # The script's prints go above the line when they share its terminal; when
                # its stdout is a file or a pipe they must stay there, not move to the screen.
                self._live = Live(self._spinner, console=self.console, transient=True,
                                  redirect_stdout=sys.stdout.isatty(), redirect_stderr=False)
                self._live.start()

    def handle_batch(self, first_seq: int, t: float, batch: list) -> None:
        """Count a captured batch (:mod:`autodiff_trace.core.captured`): it holds no pass's
        start or end, so the line is redrawn only when the count crosses ``every``."""
        if self._began is None:
            self._began = time.perf_counter()
        before, self.events = self.events, self.events + len(batch)
        if self.events // self.every != before // self.every:
            self._redraw()

    def describe(self) -> str:
        """The status line.

        >>> sink = ProgressSink(Console(file=None)); sink.events, sink.passes = 12000, 1
        >>> sink.describe()
        'tracing: 12,000 events, 1 backward pass'
        """
        return f"tracing: {plural(self.events, 'event')}, {plural(self.passes, 'backward pass')}"

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
