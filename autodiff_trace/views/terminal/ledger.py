"""Rich renderables for what a backward pass added up: the ledger and the findings panel.

The ledger lists, node by node, every gradient written in a pass, who sent it, the
local derivative times the upstream gradient, and the running total, so branching
(several contributions) and stale starts (a grad left by an earlier pass) stand out.
The findings panel shows ``diagnostic`` events without knowing any finding kind.
"""

from __future__ import annotations

import math
from typing import Iterable, List, Optional, Sequence

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..graph.diagram import visible
from ...core.events import Diagnostic, GradAccumulated
from ...core.model import PassInfo, TraceModel

__all__ = [
    "format_number", "ordinal", "display_name", "overwrote", "Ledger", "FindingsPanel", "WARN",
    "SEVERITY_STYLES",
]

WARN = "bold yellow"
SEVERITY_STYLES = {"error": "bold red", "warning": "bold yellow", "info": "bold cyan"}


def format_number(value: Optional[float]) -> str:
    """A number as short as it can be without hiding what matters.

    >>> format_number(9.0), format_number(1 / 3), format_number(-2.5e-12), format_number(-0.0)
    ('9', '0.333333', '-2.5e-12', '0')
    """
    if value is None:
        return "?"
    if not math.isfinite(value):
        return "nan" if value != value else ("inf" if value > 0 else "-inf")
    return f"{value + 0.0:.6g}"  # + 0.0 turns -0.0 into 0


def ordinal(n: int) -> str:
    """English ordinal of a positive integer.

    >>> [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 102)]
    ['1st', '2nd', '3rd', '4th', '11th', '12th', '13th', '21st', '102nd']
    """
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }"


def display_name(name: str, node_id: int) -> str:
    r"""The name shown for a node: its id added, unless the name already ends with it.

    Control characters are shown as escapes, so a name cannot break a line or send
    terminal codes.

    >>> display_name("x", 1), display_name("add#4", 4), display_name("w[i]", 12)
    ('x #1', 'add#4', 'w[i] #12')
    >>> display_name("a\nb\x1b[31m", 2)
    'a\\nb\\x1b[31m #2'
    """
    name = visible(name, None)
    return name if name.endswith(f"#{node_id}") else f"{name} #{node_id}"


def overwrote(write: GradAccumulated, root: int) -> bool:
    """True for a write that assigned a grad where the chain rule adds; seeding the
    root by assignment is not one."""
    return write.replaced and not (write.fired_by is None and write.target == root)


def _signed(value: float) -> str:
    text = format_number(value)
    return text if text.startswith("-") else "+" + text


class Ledger:
    """Every grad write of one pass, grouped by target node, in the pass's order.

    Args:
        model: the trace, folded into a :class:`TraceModel`.
        pass_no: which pass to show.
        max_rows: at most this many contribution rows; the rest are counted.
        per_node: at most this many rows for one node (its first ones and its last).
    """

    def __init__(self, model: TraceModel, pass_no: int, *, max_rows: int = 200,
                 per_node: int = 8) -> None:
        self.model = model
        self.pass_no = pass_no
        self.max_rows = max_rows
        self.per_node = max(3, per_node)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        p = self.model.pass_(self.pass_no)
        if p is None or not p.writes:
            return
        targets = [n for n in p.order if n in p.writes_to]
        targets += [n for n in p.writes_to if n not in p.reachable]
        yield self._summary(p, targets)
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        for header, justify, no_wrap in (("node", "left", False), ("from", "left", False),
                                         ("contribution", "right", True), ("grad", "right", True),
                                         ("note", "left", False)):
            table.add_column(header, justify=justify, no_wrap=no_wrap)
        rows = shown = 0
        exact_upstream = len(p.fired) == len(p.fire_number)  # no node fired twice
        for target in targets:
            if rows >= self.max_rows:
                break
            writes = p.writes_to[target]
            picked: List[Optional[GradAccumulated]] = list(writes)
            if len(writes) > self.per_node:  # None stands for the rows left out
                picked = [*writes[: self.per_node - 2], None, writes[-1]]
            picked = picked[: self.max_rows - rows]
            self._add_node(table, p, target, writes, picked, exact_upstream)
            rows += len(picked)
            shown += sum(w is not None for w in picked)
        yield table
        hidden = len(p.writes) - shown
        if hidden > 0:
            yield Text(f"… {hidden} more contributions not shown (at most {self.max_rows} rows, "
                       f"{self.per_node} per node)", style="dim")

    def _summary(self, p: PassInfo, targets: List[int]) -> Text:
        branching = [n for n in targets if len(p.writes_to[n]) >= 2]
        stale = [n for n in targets if self._start(p, n) != 0]
        text = Text.assemble((f"ledger of pass {p.pass_no}: {len(p.writes)} contributions to "
                              f"{len(targets)} nodes", "bold"))
        text.append(" (local derivative × upstream grad = added)", style="dim")
        for label, nodes in (("branching (2 or more contributions)", branching),
                             ("stale (non-zero grad before the pass)", stale)):
            if nodes:
                text.append(f"\n  {label}: ", style=WARN)
                text.append(self._names(nodes))
        return text

    def _names(self, nodes: Sequence[int], limit: int = 8) -> str:
        shown = ", ".join(display_name(self.model.node(n).name, n) for n in nodes[:limit])
        return shown + (f", … ({len(nodes)} nodes in all)" if len(nodes) > limit else "")

    @staticmethod
    def _start(p: PassInfo, node_id: int) -> float:
        if node_id in p.grads_before:
            return p.grads_before[node_id]
        return p.writes_to[node_id][0].grad_before

    def _add_node(self, table: Table, p: PassInfo, target: int, writes: List[GradAccumulated],
                  picked: List[Optional[GradAccumulated]], exact_upstream: bool) -> None:
        start = self._start(p, target)
        notes = []
        if start != 0:
            notes.append(f"stale (held {format_number(start)})")
        if len(writes) >= 2:
            notes.append(f"branching ({len(writes)})")
        style = WARN if notes else "bold"
        for i, w in enumerate(picked):
            if w is None:
                skipped = len(writes) - len(picked) + 1
                table.add_row("", Text(f"… {skipped} more", style="dim"), "", "", "")
                continue
            note = Text.assemble(("; ".join(notes) if i == 0 else "", WARN))
            if overwrote(w, p.root):
                note.append(("; " if note else "") + "assigned (=), not added", style="bold red")
            if w.fired_by is not None and w.fired_by not in p.reachable:
                note.append(("; " if note else "") + "sent from outside the graph", style="bold red")
            table.add_row(
                Text(display_name(self.model.node(target).name, target), style=style) if i == 0 else "",
                Text(self._sender(p, w)),
                self._contribution(p, w, exact_upstream),
                Text(f"{format_number(w.grad_before)} → {format_number(w.grad_after)}"),
                note,
            )

    def _sender(self, p: PassInfo, w: GradAccumulated) -> str:
        if w.fired_by is None:
            return "seed" if w.target == p.root else "outside backward"
        return display_name(self.model.node(w.fired_by).name, w.fired_by)

    @staticmethod
    def _contribution(p: PassInfo, w: GradAccumulated, exact_upstream: bool) -> Text:
        """``1 × 9 = +9``: local derivative times upstream grad, and what was added."""
        text = Text()
        if w.local_grad is not None:
            upstream = p.upstream.get(w.fired_by) if exact_upstream else None
            if upstream is None and w.local_grad != 0 and math.isfinite(w.local_grad):
                upstream = w.contribution / w.local_grad
            product = f"{format_number(w.local_grad)} × {format_number(upstream)}"
            text.append(product + (", " if w.replaced else " = "), style="dim")
        if w.replaced:
            text.append(f"set to {format_number(w.grad_after)}",
                        style="bold red" if overwrote(w, p.root) else "green")
        else:
            text.append(_signed(w.contribution), style="green")
        return text


class FindingsPanel:
    """``diagnostic`` events in a panel: severity, message, nodes, ``file:line``, hint.

    Args:
        diagnostics: the events to show, in order.
        title: the panel's title.
        max_findings: at most this many; the rest are counted.
    """

    def __init__(self, diagnostics: Iterable[Diagnostic], *, title: str = "findings",
                 max_findings: int = 200) -> None:
        self.diagnostics = list(diagnostics)
        self.title = title
        self.max_findings = max_findings

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not self.diagnostics:
            return
        shown = self.diagnostics[: self.max_findings]
        parts = [self._finding(d) for d in shown]
        if len(self.diagnostics) > len(shown):
            parts.append(Text(f"… {len(self.diagnostics) - len(shown)} more findings not shown",
                              style="dim"))
        severities = {d.severity for d in self.diagnostics}
        border = next((SEVERITY_STYLES[s] for s in SEVERITY_STYLES if s in severities), "bold")
        yield Panel(Group(*parts), title=Text(self.title), title_align="left",
                    border_style=border, expand=True)

    @staticmethod
    def _finding(d: Diagnostic) -> Text:
        text = Text()
        # a finding may come from a trace file or quote user names: show control characters as escapes
        text.append(visible(d.severity.upper(), None), style=SEVERITY_STYLES.get(d.severity, "bold"))
        text.append(f" {visible(d.finding, None)}: ", style="dim")
        text.append(visible(d.message, None))
        if d.names:
            text.append("\n  nodes: ", style="dim")
            text.append(", ".join(visible(name, None) for name in d.names))
        if d.site:
            text.append("\n  at ", style="dim")
            text.append(visible(d.site, None))
        if d.hint:
            text.append("\n  fix: ", style="dim")
            text.append(visible(d.hint, None))
        return text
