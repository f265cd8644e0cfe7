"""The findings panel, as a Rich renderable: one block per cause, most severe first, each
with its severity, the passes it covers, message, nodes, ``file:line`` and fix, shown
without knowing any finding kind."""

from __future__ import annotations

from typing import Iterable, List

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.panel import Panel
from rich.text import Text

from ...analysis.causes import group, passes_text
from ...core.events import Diagnostic
from ...core.text import plural, visible
from .styles import DIM, SEVERITY_STYLES, STRONG, severity_style

__all__ = ["FindingsPanel", "by_severity", "severity_counts"]

_NAMES_SHOWN = 12  # a cause about many nodes lists this many of their names


def by_severity(causes: List[dict]) -> List[dict]:
    """Causes ordered most severe first (errors, warnings, infos, then any other), each
    severity in the order the trace first found them."""
    rank = {severity: i for i, severity in enumerate(SEVERITY_STYLES)}
    return sorted(causes, key=lambda c: rank.get(c["severity"], len(rank)))


def severity_counts(causes: List[dict]) -> str:
    """``2 errors, 1 warning``: how many causes of each severity, most severe first.

    >>> severity_counts([{"severity": "warning"}, {"severity": "error"}, {"severity": "error"}])
    '2 errors, 1 warning'
    """
    counts: dict = {}
    for c in by_severity(causes):
        counts[c["severity"]] = counts.get(c["severity"], 0) + 1
    return ", ".join(plural(n, visible(severity, None)) for severity, n in counts.items())


class FindingsPanel:
    """``diagnostic`` events in a panel, one block per cause (kind, severity and line):
    a cause reported again in later passes is shown once, in its latest words.

    Args:
        diagnostics: the events to show, in the order the trace gave them.
        title: the panel's title; the count of causes per severity follows it.
        max_findings: at most this many causes; the rest are counted.
    """

    def __init__(self, diagnostics: Iterable[Diagnostic], *, title: str = "findings",
                 max_findings: int = 200) -> None:
        self.causes = by_severity(group(diagnostics))
        self.title = title
        self.max_findings = max_findings

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not self.causes:
            return
        shown = self.causes[: self.max_findings]
        parts: list = []
        for cause in shown:
            if parts:
                parts.append(Text())
            parts.append(self._cause(cause))
        if len(self.causes) > len(shown):
            parts.append(Text(f"… {len(self.causes) - len(shown)} more findings not shown",
                              style=DIM))
        severities = {c["severity"] for c in self.causes}
        border = next((SEVERITY_STYLES[s] for s in SEVERITY_STYLES if s in severities), STRONG)
        title = Text(f"{self.title} · {severity_counts(self.causes)}")
        yield Panel(Group(*parts), title=title, title_align="left", border_style=border, expand=True)

    @staticmethod
    def _cause(c: dict) -> Text:
        text = Text()
        # a finding may come from a trace file or quote user names: show control characters as escapes
        text.append(visible(c["severity"].upper(), None), style=severity_style(c["severity"]))
        text.append(f" {visible(c['finding'], None)}: ", style=DIM)
        text.append(visible(c["message"], None))
        passes = [n for n in c["passes"] if n]
        if passes:
            text.append("\n  in ", style=DIM)
            text.append(passes_text(passes))
        names = c["names"]
        if names:
            text.append("\n  nodes: ", style=DIM)
            text.append(", ".join(visible(name, None) for name in names[:_NAMES_SHOWN]))
            if len(names) > _NAMES_SHOWN:
                text.append(f", … ({len(names)} in all)", style=DIM)
        if c["site"]:
            text.append("\n  at ", style=DIM)
            text.append(visible(c["site"], None))
        if c["hint"]:
            text.append("\n  fix: ", style=DIM)
            text.append(visible(c["hint"], None))
        return text
