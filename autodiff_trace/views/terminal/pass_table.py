"""One line per backward pass, as a Rich table: its root, its size, and the findings in it.

The report opens with this table under the findings, so a long training loop reads as
a column of passes in which the ones with findings stand out. Many passes in a row
without findings fold into one line when the table would be too long.
"""

from __future__ import annotations

from typing import Dict, List, NamedTuple, Optional, Sequence

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

from ...core.model import PassInfo, TraceModel
from ...core.text import display_name, visible
from .styles import DIM, SEVERITY_STYLES, STRONG, WARN, severity_style

__all__ = ["PassRow", "PassTable"]


class PassRow(NamedTuple):
    """What the table says of one pass; kept after the pass itself is dropped."""

    pass_no: int
    root: str
    nodes: int
    fired: int
    writes: int
    finished: bool

    @classmethod
    def of(cls, model: TraceModel, p: PassInfo) -> "PassRow":
        return cls(p.pass_no, display_name(model.node(p.root).name, p.root, limit=24),
                   len(p.order), len(p.fired), len(p.writes), p.finished)


def _span(values: Sequence[int]) -> str:
    """``138`` when all are equal, else ``5–9``.

    >>> _span([138, 138]), _span([9, 5, 7])
    ('138', '5–9')
    """
    low, high = min(values), max(values)
    return f"{low:,}" if low == high else f"{low:,}–{high:,}"


class PassTable:
    """Every pass in one line: pass, root, nodes reachable, fired, grad writes, findings.

    Args:
        rows: the passes, in order.
        kinds: pass number -> the (kind, severity) of each finding in that pass, in order.
        max_rows: at most this many lines; runs of passes without findings fold first.
    """

    def __init__(self, rows: Sequence[PassRow], kinds: Dict[int, List[tuple]], *,
                 max_rows: int = 40) -> None:
        self.rows = list(rows)
        self.kinds = kinds
        self.max_rows = max(3, max_rows)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not self.rows:
            return
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        for header, justify in (("pass", "right"), ("root", "left"), ("nodes", "right"),
                                ("fired", "right"), ("writes", "right"), ("findings", "left")):
            table.add_column(header, justify=justify, no_wrap=header != "findings")
        for cells in self._lines():
            table.add_row(*cells)
        yield table

    def _lines(self) -> List[tuple]:
        groups: List[List[PassRow]] = [[row] for row in self.rows]
        if len(groups) > self.max_rows:  # fold runs of quiet passes into one line each
            groups = []
            for row in self.rows:
                if groups and self._quiet(row) and all(self._quiet(r) for r in groups[-1]):
                    groups[-1].append(row)
                else:
                    groups.append([row])
        lines = [self._line(g) for g in groups]
        if len(lines) > self.max_rows:
            hidden = groups[self.max_rows - 2: -1]
            passes = sum(len(g) for g in hidden)
            noisy = sum(not self._quiet(r) for g in hidden for r in g)
            gap = (Text("…", style=DIM), Text(f"{passes:,} more passes", style=DIM), "", "", "",
                   Text(f"{noisy:,} with findings" if noisy else "none", style=DIM))
            lines = [*lines[: self.max_rows - 2], gap, lines[-1]]
        return lines

    def _quiet(self, row: PassRow) -> bool:
        return row.finished and not self.kinds.get(row.pass_no)

    def _line(self, rows: List[PassRow]) -> tuple:
        first = rows[0]
        if len(rows) == 1:
            return (Text(str(first.pass_no), style=STRONG), Text(first.root), f"{first.nodes:,}",
                    f"{first.fired:,}", f"{first.writes:,}", self._findings(first))
        return (Text(f"{first.pass_no}–{rows[-1].pass_no}", style=STRONG),
                Text(f"{len(rows)} passes", style=DIM), _span([r.nodes for r in rows]),
                _span([r.fired for r in rows]), _span([r.writes for r in rows]),
                Text("none", style=DIM))

    def _findings(self, row: PassRow) -> Text:
        text = Text()
        seen: Dict[str, Optional[str]] = {}
        rank = {severity: i for i, severity in enumerate(SEVERITY_STYLES)}
        found = sorted(self.kinds.get(row.pass_no, ()), key=lambda k: rank.get(k[1], len(rank)))
        for kind, severity in found:  # most severe first, as in the findings panel
            seen.setdefault(kind, severity)
        for kind, severity in seen.items():
            if text:
                text.append(", ", style=DIM)
            text.append(visible(kind, None), style=severity_style(severity))
        if not row.finished:
            text.append(("; " if text else "") + "cut short", style=WARN)
        return text if text else Text("none", style=DIM)
