"""The Rich terminal sink: a live tree of each backward pass, then the run's report.

In a terminal, a pass is drawn as it runs (:class:`~autodiff_trace.views.terminal.report.LivePassView`):
the tree so far, the node firing now highlighted, and the last step in words; the view
goes when the pass ends. At the end of the trace, live or not, the report is printed once
(:class:`~autodiff_trace.views.terminal.report.RunReport`), the answer first: the
findings, one line per pass, then the tree and ledger of the passes with findings.
"""

from __future__ import annotations

import time
from typing import Optional

from rich.console import Console
from rich.live import Live

from ..core.captured import events_of
from ..core.events import BackwardFinished, BackwardFnFired, BackwardStarted, Event, GradAccumulated
from ..core.model import TraceModel
from ..views.terminal.pass_tree import PassTree
from ..views.terminal.report import LivePassView, ReportPrinter, default_console

__all__ = ["RichTreeSink"]


def _wants_live(console: Console) -> bool:
    return console.is_terminal and not console.is_dumb_terminal and not console.no_color


class RichTreeSink:
    """A sink that draws each backward pass with Rich: live in a terminal, else once.

    Args:
        console: where to draw; a console on stdout when None (no styles under ``NO_COLOR``).
        live: redraw the tree as the pass runs; None means yes in a colour terminal.
        delay: seconds to pause after each step of a pass in the live view, to watch it.
        max_lines: at most this many lines for a tree and for a ledger; the rest are counted.
        ledger: print the ledger of contributions with each tree.
        full: print every pass's tree and ledger, not only those of passes with findings.
        refresh_per_second: how often the live view redraws when ``delay`` is 0.

    ``self.model`` folds the events; a pass is dropped from it once it is known that
    the report will not print it in full, so a long training loop does not keep every
    pass in memory. Under a
    tracer it reads the tracer's model instead (``bind``), which it leaves whole.
    """

    def __init__(self, console: Optional[Console] = None, *, live: Optional[bool] = None,
                 delay: float = 0.0, max_lines: int = 200, ledger: bool = True,
                 full: bool = False, refresh_per_second: float = 15.0) -> None:
        if delay < 0:
            raise ValueError(f"delay must be 0 or more seconds per step, got {delay!r}")
        if max_lines < 1:
            raise ValueError(f"max_lines must be at least 1, got {max_lines!r}")
        if refresh_per_second <= 0:
            raise ValueError(f"refresh_per_second must be positive, got {refresh_per_second!r}")
        console = console if console is not None else default_console()
        self.console = console
        self.live = _wants_live(console) if live is None else live
        self.delay = delay
        self.max_lines = max_lines
        self.ledger = ledger
        self.model = TraceModel()
        self._folds = True  # until a tracer binds its own model
        self._interval = 1.0 / refresh_per_second
        self._live: Optional[Live] = None
        self._view: Optional[LivePassView] = None
        self._last_refresh = 0.0
        self._printer = ReportPrinter(console, self.model, full=full, max_lines=max_lines,
                                      ledger=ledger, forget=True)
        self.closed = False
        if not self.live:  # nothing is drawn per event: the tracer may hand them over in batches
            self.handle_batch = self._take_batch

    def bind(self, model: TraceModel) -> None:
        """Read the tracer's ``model`` (folded before each event reaches this sink)."""
        self.model, self._folds = model, False
        self._printer.model, self._printer.forget = model, False

    def handle(self, event: Event) -> None:
        """Fold the event into the model; draw what changed in the live view."""
        if self._folds:
            self.model.handle(event)
        match event:
            case BackwardStarted():
                self._printer.started(event.pass_no)
                if self.live:
                    self._start_live(event.pass_no)
            case BackwardFnFired() | GradAccumulated() if self._view is not None:
                self._view.note(event)
                self._refresh()
                if self.delay:
                    time.sleep(self.delay)
            case BackwardFinished():
                self._stop_live()

    def _take_batch(self, first_seq: int, t: float, batch: list) -> None:
        """Take a captured batch (:mod:`autodiff_trace.core.captured`), when not live: it begins
        and ends no pass, so there is nothing to draw, only a model to fold when unbound."""
        if self._folds:
            for event in events_of(first_seq, t, batch):
                self.model.handle(event)

    def close(self) -> None:
        """End the live view, and print the run's report."""
        if self.closed:
            return
        self._stop_live()
        self._printer.close()
        self.closed = True

    # -- live view ----------------------------------------------------------------------
    def _start_live(self, pass_no: int) -> None:
        self._stop_live()
        height = self.console.size.height
        self._view = LivePassView(self.model, pass_no, max_lines=max(3, min(self.max_lines, height - 4)))
        # the graph is fixed during a pass: count the tree's lines once, not at every redraw
        self._view.total_lines = PassTree(self.model, pass_no).count_lines()
        self._live = Live(self._view, console=self.console, auto_refresh=False, transient=True)
        self._live.start(refresh=True)
        self._last_refresh = time.perf_counter()

    def _refresh(self) -> None:
        now = time.perf_counter()
        if self.delay or now - self._last_refresh >= self._interval:
            self._live.refresh()
            self._last_refresh = now

    def _stop_live(self) -> None:
        if self._live is not None:
            self._live.stop()
        self._live = self._view = None
