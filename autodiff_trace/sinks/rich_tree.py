"""The Rich terminal sink: a live tree of each backward pass, then its report.

In a terminal, a pass is drawn as it runs: a tree rooted at the output, one line per
node with its op, value, the grads it went through (``grad 0 → 9 → 18``) and when
its backward function fired; the node firing now is highlighted. When the pass ends,
and always when the output is not a terminal, the report is printed once: the tree,
any node that fired outside the root's graph, the ledger and the findings.

A node reached a second time is a one-line reference (``↩ x #1``), so the tree has
one line per edge, and at most ``max_lines`` of them are drawn.
"""

from __future__ import annotations

import os
import time
from typing import Iterable, List, Optional, Set

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.live import Live
from rich.rule import Rule
from rich.text import Text

from ..core.events import Event, GradAccumulated
from ..core.model import PassInfo, TraceModel
from ..views.terminal.ledger import FindingsPanel, Ledger, display_name, format_number
from ..views.terminal.pass_tree import JUST_WRITTEN, NOW, PassTree

__all__ = ["RichTreeSink", "PassReport", "LivePassView", "print_report"]


def _header(model: TraceModel, p: PassInfo, state: str = "") -> Group:
    """A rule naming the pass and its root, then a line of counts (never cut by the width)."""
    root = display_name(model.node(p.root).name, p.root)
    writes = len(p.writes)
    counts = Text(f"{len(p.order)} nodes reachable · {len(p.fired)} fired · "
                  f"{writes} grad write{'' if writes == 1 else 's'}{state}", style="dim")
    return Group(Rule(Text(f"backward pass {p.pass_no} from {root}", style="bold"), style="dim"),
                 counts)


class PassReport:
    """The report of one pass: header, tree, the ledger and the findings.

    Args:
        model: the trace, folded into a :class:`TraceModel` (live or replayed).
        pass_no: which pass to report.
        max_lines: at most this many lines for the tree and, separately, for the ledger.
        ledger: include the ledger of contributions.
    """

    def __init__(self, model: TraceModel, pass_no: int, *, max_lines: int = 200,
                 ledger: bool = True) -> None:
        self.model = model
        self.pass_no = pass_no
        self.max_lines = max_lines
        self.ledger = ledger

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        p = self.model.pass_(self.pass_no)
        if p is None:
            yield Text(f"no backward pass {self.pass_no} in this trace", style="bold red")
            return
        yield _header(self.model, p, "" if p.finished else " · cut short")
        yield PassTree(self.model, self.pass_no, max_lines=self.max_lines)
        if self.ledger:
            yield Text()
            yield Ledger(self.model, self.pass_no, max_rows=self.max_lines)
        if p.diagnostics:
            yield FindingsPanel(p.diagnostics, title=f"findings · pass {p.pass_no}",
                                max_findings=self.max_lines)


class LivePassView:
    """What the live display shows while a pass runs: the tree so far and the last step."""

    def __init__(self, model: TraceModel, pass_no: int, *, max_lines: int) -> None:
        self.model = model
        self.pass_no = pass_no
        self.max_lines = max_lines
        self.now: Optional[int] = None
        self.last_write: Optional[GradAccumulated] = None
        self.last: Optional[Event] = None
        self.total_lines: Optional[int] = None

    def note(self, event: Event) -> None:
        """Follow the pass: which node fires now, which grad changed last."""
        if event.kind == "backward_fn_fired":
            self.now = event.node
            self.last = event
        elif event.kind == "grad_accumulated":
            self.last = self.last_write = event

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        p = self.model.pass_(self.pass_no)
        if p is None:
            return
        yield _header(self.model, p, " · running")
        target = self.last_write.target if self.last_write is not None else None
        yield PassTree(self.model, self.pass_no, max_lines=self.max_lines, now=self.now,
                       just_written=target, total_lines=self.total_lines)
        if self.last is not None:
            yield self._step(self.last)

    def _step(self, event: Event) -> Text:
        """One line saying what just happened."""
        name = self.model.node
        text = Text.assemble(("now: ", "bold"))
        if event.kind == "backward_fn_fired":
            text.append(display_name(name(event.node).name, event.node), style=NOW)
            text.append(f" fires, passing on {format_number(event.upstream)} to its inputs")
            return text
        sender = "seed" if event.fired_by is None else display_name(name(event.fired_by).name, event.fired_by)
        text.append(sender, style=NOW)
        text.append(" adds ")
        text.append(format_number(event.contribution), style="green")
        text.append(" to ")
        text.append(display_name(name(event.target).name, event.target), style=JUST_WRITTEN)
        text.append(f"  (grad {format_number(event.grad_before)} → {format_number(event.grad_after)})")
        return text


def _wants_live(console: Console) -> bool:
    return console.is_terminal and not console.is_dumb_terminal and not console.no_color


class RichTreeSink:
    """A sink that draws each backward pass with Rich: live in a terminal, else once.

    Args:
        console: where to draw; a console on stdout when None (no styles under ``NO_COLOR``).
        live: redraw the tree as the pass runs; None means yes in a colour terminal.
        delay: seconds to pause after each step of a pass in the live view, to watch it.
        max_lines: at most this many lines for a tree and for a ledger; the rest are counted.
        ledger: print the ledger of contributions after each pass.
        refresh_per_second: how often the live view redraws when ``delay`` is 0.

    ``self.model`` folds the events; a pass is dropped from it once its report is
    printed, so a long training loop does not keep every pass in memory. Under a
    tracer it reads the tracer's model instead (``bind``), which it leaves whole.
    """

    def __init__(self, console: Optional[Console] = None, *, live: Optional[bool] = None,
                 delay: float = 0.0, max_lines: int = 200, ledger: bool = True,
                 refresh_per_second: float = 15.0) -> None:
        if delay < 0:
            raise ValueError(f"delay must be 0 or more seconds per step, got {delay!r}")
        if max_lines < 1:
            raise ValueError(f"max_lines must be at least 1, got {max_lines!r}")
        if refresh_per_second <= 0:
            raise ValueError(f"refresh_per_second must be positive, got {refresh_per_second!r}")
        if console is None:
            plain = os.environ.get("NO_COLOR", "") != "" or os.environ.get("TERM") == "dumb"
            console = Console(color_system=None) if plain else Console()
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
        self._pending: List[int] = []  # finished passes whose report waits for their findings
        self._printed: Set[int] = set()
        self._loose: list = []  # findings for no pass, or for a pass already printed
        self.closed = False

    def bind(self, model: TraceModel) -> None:
        """Read the tracer's ``model`` (folded before each event reaches this sink)."""
        self.model, self._folds = model, False

    def handle(self, event: Event) -> None:
        """Fold the event into the model; draw or print what changed."""
        kind = event.kind
        if kind != "diagnostic" and (self._pending or self._loose) and self.model.current is None:
            self._flush()
        if kind == "diagnostic" and (event.pass_no in self._printed
                                     or self.model.pass_(event.pass_no) is None):
            self._loose.append(event)
            if self._folds:
                self.model.diagnostics.append(event)
            return
        if self._folds:
            self.model.handle(event)
        if kind == "backward_started":
            if self.live:
                self._start_live(event.pass_no)
        elif kind in ("backward_fn_fired", "grad_accumulated"):
            if self._view is not None:
                self._view.note(event)
                self._refresh()
                if self.delay:
                    time.sleep(self.delay)
        elif kind == "backward_finished":
            self._stop_live()
            self._pending.append(event.pass_no)

    def close(self) -> None:
        """End the live view, and print every report and finding not yet printed."""
        if self.closed:
            return
        self._stop_live()
        cut = self.model.current  # a replayed trace that ends mid-pass: report it as cut short
        if cut is not None and cut.pass_no not in self._pending:
            self._pending.append(cut.pass_no)
        self._flush()
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

    # -- static report ------------------------------------------------------------------
    def _flush(self) -> None:
        for pass_no in self._pending:
            self.console.print(PassReport(self.model, pass_no, max_lines=self.max_lines,
                                          ledger=self.ledger))
            self._printed.add(pass_no)
            if self._folds:  # a printed pass is done: drop it so a long training loop stays small
                self.model.passes = [q for q in self.model.passes if q.pass_no != pass_no]
        self._pending = []
        if self._loose:
            self.console.print(FindingsPanel(self._loose, title="findings",
                                             max_findings=self.max_lines))
            self._loose = []


def print_report(events: Iterable[Event], console: Optional[Console] = None, *,
                 max_lines: int = 200, ledger: bool = True) -> None:
    """Print the report of every pass in ``events`` (a replayed trace), then loose findings.

    Args:
        events: the trace, as from ``load_events``.
        console: where to print; stdout when None.
        max_lines: at most this many lines for each tree and each ledger.
        ledger: include the ledgers.
    """
    sink = RichTreeSink(console, live=False, max_lines=max_lines, ledger=ledger)
    for event in events:
        sink.handle(event)
    sink.close()


if __name__ == "__main__":  # the notebook's two passes, drawn live in a terminal
    from autodiff_trace.testing import notebook_sequence

    notebook_sequence([RichTreeSink(delay=0.4)])
