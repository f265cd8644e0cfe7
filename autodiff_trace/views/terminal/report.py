"""The terminal report of a run, which leads with the answer: the findings, one per cause;
one line per pass; then the tree and ledger of the passes worth reading (those with
findings, small enough to read, a few at most). Also a pass's report and the live view
of a pass under way.

:func:`print_report` prints a saved trace the way the live run printed it:
:class:`~autodiff_trace.sinks.rich_tree.RichTreeSink` and it share :class:`ReportPrinter`.
"""

from __future__ import annotations

import os
from typing import Dict, Iterable, List, Optional, Sequence, Set

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.rule import Rule
from rich.text import Text

from ...core.describe import describe
from ...core.events import BackwardFnFired, Event, GradAccumulated
from ...core.model import PassInfo, TraceModel
from ...core.text import display_name, plural
from .findings import FindingsPanel
from .ledger import Ledger
from .pass_table import PassRow, PassTable
from .pass_tree import PassTree
from .styles import ADDED, DIM, STRONG, WRONG

__all__ = ["PassReport", "LivePassView", "RunReport", "ReportPrinter", "print_report", "default_console",
           "DETAIL_LINES", "DETAIL_PASSES"]

DETAIL_LINES = 80  # a pass whose tree is longer gets a pointer to its diagram, not its tree
DETAIL_PASSES = 3  # at most this many passes with findings are printed in full


def default_console() -> Console:
    """A console on stdout, with no styles under ``NO_COLOR`` or a dumb terminal."""
    plain = os.environ.get("NO_COLOR", "") != "" or os.environ.get("TERM") == "dumb"
    return Console(color_system=None) if plain else Console()


def _header(model: TraceModel, p: PassInfo, state: str = "") -> Group:
    """A rule naming the pass and its root, then a line of counts (never cut by the width)."""
    root = display_name(model.node(p.root).name, p.root)
    counts = Text(f"{plural(len(p.order), 'node')} reachable · {len(p.fired):,} fired · "
                  f"{plural(len(p.writes), 'grad write')}{state}", style=DIM)
    return Group(Rule(Text(f"backward pass {p.pass_no} from {root}", style=STRONG), style=DIM),
                 counts)


class PassReport:
    """The report of one pass: header, tree and the ledger (the findings open the run's report).

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
            yield Text(f"no backward pass {self.pass_no} in this trace", style=WRONG)
            return
        yield _header(self.model, p, "" if p.finished else " · cut short")
        yield PassTree(self.model, self.pass_no, max_lines=self.max_lines)
        if self.ledger:
            yield Text()
            yield Ledger(self.model, self.pass_no, max_rows=self.max_lines)


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
        match event:
            case BackwardFnFired():
                self.now, self.last = event.node, event
            case GradAccumulated():
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
        """One line saying what just happened, in the words every view uses."""
        upstream = (self.model.pass_(self.pass_no).upstream.get(event.fired_by)
                    if isinstance(event, GradAccumulated) else None)
        return Text.assemble(("now: ", STRONG), describe(event, self.model.name, upstream=upstream))


class RunReport:
    """The report of a run, the answer first: the findings (one block per cause, most
    severe first), one line per pass, then the tree and ledger of each pass with findings
    (or cut short) whose tree fits in ``detail_lines``, at most ``max_passes`` of them; a
    longer one gets a line pointing at its diagram. A run of one pass is always shown.

    Args:
        model: the trace, folded into a :class:`TraceModel` (it may have let quiet passes go).
        dropped: the table lines of passes the model no longer holds.
        full: print every pass in full, whatever its size or findings.
        max_lines: at most this many lines for each tree and each ledger printed.
        ledger: include the ledgers.
        detail_lines: a pass whose tree is longer is pointed at, not printed.
        max_passes: at most this many passes with findings printed in full.
    """

    def __init__(self, model: TraceModel, dropped: Sequence[PassRow] = (), *, full: bool = False,
                 max_lines: int = 200, ledger: bool = True, detail_lines: int = DETAIL_LINES,
                 max_passes: int = DETAIL_PASSES) -> None:
        self.model, self.dropped, self.full = model, list(dropped), full
        self.max_lines, self.ledger = max_lines, ledger
        self.detail_lines, self.max_passes = detail_lines, max_passes

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        rows = sorted([*self.dropped, *(PassRow.of(self.model, p) for p in self.model.passes)])
        diagnostics = self.model.diagnostics
        if not rows and not diagnostics:
            return
        if diagnostics:
            yield FindingsPanel(diagnostics, max_findings=self.max_lines)
        else:
            yield Text(f"no findings in {plural(len(rows), 'backward pass')}", style=ADDED)
        kinds = self.kinds()
        if rows:
            yield Text()
            yield PassTable(rows, kinds)
        yield from self._details(rows, kinds)

    def kinds(self) -> Dict[int, List[tuple]]:
        """Pass number -> the (kind, severity) of each finding given in that pass."""
        kinds: Dict[int, List[tuple]] = {}
        for d in self.model.diagnostics:
            kinds.setdefault(d.pass_no, []).append((d.finding, d.severity))
        return kinds

    def _details(self, rows: List[PassRow], kinds: Dict[int, List[tuple]]) -> RenderResult:
        shown = left = 0
        held_back = False  # some pass is not printed in full
        for row in rows:
            p = self.model.pass_(row.pass_no)
            if self.full or len(rows) == 1:
                yield from self._report(row.pass_no)
                continue
            if not (kinds.get(row.pass_no) or not row.finished):
                held_back = True
                continue
            held_back = True
            if shown >= self.max_passes:
                left += 1
                continue
            shown += 1
            lines = PassTree(self.model, row.pass_no).count_lines() if p is not None else None
            if lines is not None and lines <= self.detail_lines:
                yield from self._report(row.pass_no)
            else:
                yield Text()
                yield self._pointer(row, lines)
        if left:
            yield Text()
            yield Text(f"… {plural(left, 'more pass')} with findings not shown here (at most "
                       f"{self.max_passes}): see their diagrams, pass_N.svg", style=DIM)
        if held_back:
            yield Text()
            yield Text("run with --full-report to print every pass's tree and ledger", style=DIM)

    def _report(self, pass_no: int) -> RenderResult:
        yield Text()
        yield PassReport(self.model, pass_no, max_lines=self.max_lines, ledger=self.ledger)

    @staticmethod
    def _pointer(row: PassRow, lines: Optional[int]) -> Text:
        """A pass too long to print here: where to see it instead."""
        text = Text.assemble((f"backward pass {row.pass_no} from {row.root}", STRONG))
        size = f"its tree has {lines:,} lines" if lines is not None else "its tree was not kept"
        text.append(f": {size}, too many to print here; see its diagram pass_{row.pass_no}.svg, "
                    f"or print it alone with `autodiff-trace render trace.jsonl --pass {row.pass_no}`",
                    style=DIM)
        return text


class ReportPrinter:
    """Prints the run's report once, at the end of the trace (:class:`RunReport`).

    Call :meth:`started` when a pass begins (after folding its event) and :meth:`close`
    at the end of the trace.

    Args:
        console: where to print.
        model: the model the events are folded into.
        full: print every pass in full.
        max_lines: at most this many lines for each tree and each ledger.
        ledger: include the ledgers.
        forget: let a finished pass go from the model once it is known that the report
            will not print it in full, so a long training loop stays small.
    """

    def __init__(self, console: Console, model: TraceModel, *, full: bool = False,
                 max_lines: int = 200, ledger: bool = True, forget: bool = False) -> None:
        self.console, self.model = console, model
        self.full, self.max_lines, self.ledger, self.forget = full, max_lines, ledger, forget
        self.dropped: List[PassRow] = []
        self.kept = 0  # passes with findings kept for the report
        self.decided: Set[int] = set()
        self.printed = False

    def started(self, pass_no: int) -> None:
        """A pass began: the findings of the earlier ones are in, so decide which to keep."""
        if not self.forget or self.full:
            return
        with_findings = {d.pass_no for d in self.model.diagnostics}
        for p in list(self.model.passes):
            if p.pass_no == pass_no or p.pass_no in self.decided:
                continue
            self.decided.add(p.pass_no)
            if (p.pass_no in with_findings or not p.finished) and self.kept < DETAIL_PASSES:
                self.kept += 1  # shown in full, or pointed at with its size
                continue
            self.dropped.append(PassRow.of(self.model, p))
            self.model.passes.remove(p)

    def close(self) -> None:
        """Print the report (once); a pass cut short is reported too."""
        if self.printed:
            return
        self.printed = True
        self.console.print(RunReport(self.model, self.dropped, full=self.full,
                                     max_lines=self.max_lines, ledger=self.ledger))


def print_report(events: Iterable[Event], console: Optional[Console] = None, *,
                 max_lines: int = 200, ledger: bool = True, full: bool = False) -> None:
    """Print the report of ``events`` (a replayed trace) as the live run printed it.

    Args:
        events: the trace, as from ``load_events``.
        console: where to print; stdout when None.
        max_lines: at most this many lines for each tree and each ledger.
        ledger: include the ledgers.
        full: print every pass's tree and ledger, not only those of passes with findings.
    """
    if max_lines < 1:
        raise ValueError(f"max_lines must be at least 1, got {max_lines!r}")
    model = TraceModel()
    printer = ReportPrinter(console if console is not None else default_console(), model,
                            full=full, max_lines=max_lines, ledger=ledger, forget=True)
    for event in events:
        model.handle(event)
        if event.kind == "backward_started":
            printer.started(event.pass_no)
    printer.close()
