"""The ledger of a backward pass, as a Rich renderable: who added what to which grad.

It lists, node by node, every gradient written in a pass, who sent it, the local
derivative times the upstream gradient, and the running total, so branching (several
contributions) and stale starts (a grad left by an earlier pass) stand out.
"""

from __future__ import annotations

import cmath
from typing import List, Optional, Sequence

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

from ...core.events import GradAccumulated
from ...core.model import PassInfo, TraceModel
from ...core.text import display_name, number, plural, signed
from ..pass_reads import fired_once
from .ledger_targets import WrittenTargets, written_targets
from .styles import ADDED, DIM, STRONG, WARN, WRONG

__all__ = ["Ledger", "overwrote"]

_NAMED = 8  # nodes named in the summary's lists; the rest are counted


def overwrote(write: GradAccumulated, root: int) -> bool:
    """True for a write that assigned a grad where the chain rule adds; seeding the
    root by assignment is not one."""
    return write.replaced and not (write.fired_by is None and write.target == root)


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
        targets = written_targets(p, self.max_rows, _NAMED)
        yield self._summary(p, targets)
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        for header, justify, no_wrap in (("node", "left", False), ("from", "left", False),
                                         ("contribution", "right", True), ("grad", "right", True),
                                         ("note", "left", False)):
            table.add_column(header, justify=justify, no_wrap=no_wrap)
        rows = shown = 0
        upstream = _Upstream(p, {w.fired_by for target in targets.shown for w in targets.writes(target)})
        for target in targets.shown:
            if rows >= self.max_rows:
                break
            writes = targets.writes(target)
            picked: List[Optional[GradAccumulated]] = list(writes)
            if len(writes) > self.per_node:  # None stands for the rows left out
                picked = [*writes[: self.per_node - 2], None, writes[-1]]
            picked = picked[: self.max_rows - rows]
            self._add_node(table, p, target, targets.start(target), writes, picked, upstream)
            rows += len(picked)
            shown += sum(w is not None for w in picked)
        yield table
        hidden = len(p.writes) - shown
        if hidden > 0:
            yield Text(f"… {hidden} more contributions not shown (at most {self.max_rows} rows, "
                       f"{self.per_node} per node)", style=DIM)

    def _summary(self, p: PassInfo, targets: WrittenTargets) -> Text:
        text = Text.assemble((f"ledger of pass {p.pass_no}: {plural(len(p.writes), 'contribution')} "
                              f"to {plural(targets.count, 'node')}", STRONG))
        text.append(" (local derivative × upstream grad = added)", style=DIM)
        for label, (nodes, count) in (("branching (2 or more contributions)", targets.branching),
                                      ("stale (non-zero grad before the pass)", targets.stale)):
            if nodes:
                text.append(f"\n  {label}: ", style=WARN)
                text.append(self._names(nodes, count))
        return text

    def _names(self, nodes: Sequence[int], count: int) -> str:
        shown = ", ".join(display_name(self.model.node(n).name, n) for n in nodes[:_NAMED])
        return shown + (f", … ({count} nodes in all)" if count > _NAMED else "")

    def _add_node(self, table: Table, p: PassInfo, target: int, start: float, writes: List[GradAccumulated],
                  picked: List[Optional[GradAccumulated]], upstream: "_Upstream") -> None:
        notes = []
        if start != 0:
            notes.append(f"stale (held {number(start)})")
        if len(writes) >= 2:
            notes.append(f"branching ({len(writes)})")
        style = WARN if notes else STRONG
        for i, w in enumerate(picked):
            if w is None:
                skipped = len(writes) - len(picked) + 1
                table.add_row("", Text(f"… {skipped} more", style=DIM), "", "", "")
                continue
            note = Text.assemble(("; ".join(notes) if i == 0 else "", WARN))
            if overwrote(w, p.root):
                note.append(("; " if note else "") + "assigned (=), not added", style=WRONG)
            if w.fired_by is not None and w.fired_by not in p.reachable:
                note.append(("; " if note else "") + "sent from outside the graph", style=WRONG)
            table.add_row(
                Text(display_name(self.model.node(target).name, target), style=style) if i == 0 else "",
                Text(self._sender(p, w)),
                self._contribution(p, w, upstream),
                Text(f"{number(w.grad_before)} → {number(w.grad_after)}"),
                note,
            )

    def _sender(self, p: PassInfo, w: GradAccumulated) -> str:
        if w.fired_by is None:
            return "seed" if w.target == p.root else "outside backward"
        return display_name(self.model.node(w.fired_by).name, w.fired_by)

    @staticmethod
    def _contribution(p: PassInfo, w: GradAccumulated, upstreams: "_Upstream") -> Text:
        """``1 × 9 = +9``: local derivative times upstream grad, and what was added."""
        text = Text()
        if w.local_grad is not None:
            upstream = upstreams.of(w.fired_by)
            if upstream is None and w.local_grad != 0 and cmath.isfinite(w.local_grad):
                upstream = w.contribution / w.local_grad
            product = f"{number(w.local_grad)} × {number(upstream)}"
            text.append(product + (", " if w.replaced else " = "), style=DIM)
        if w.replaced:
            text.append(f"set to {number(w.grad_after)}",
                        style=WRONG if overwrote(w, p.root) else ADDED)
        else:
            text.append(signed(w.contribution), style=ADDED)
        return text


class _Upstream:
    """What each sender's latest firing passed on, read once for the senders of the rows
    shown; None for every sender when some node fired twice (which firing a write came
    from is then not known)."""

    def __init__(self, p: PassInfo, senders: set) -> None:
        self._known = p.upstream_of(senders) if senders and fired_once(p) else {}

    def of(self, sender) -> Optional[float]:
        return self._known.get(sender)
