"""The findings files: every cause a trace's findings name, as JSON and as plain text."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import List, Union

from ..analysis.causes import group
from ..core.events import Diagnostic, Event
from ._errors import cannot_write

__all__ = ["FindingsSink", "format_findings"]


class FindingsSink:
    """Keep the ``diagnostic`` events; on close write ``findings.json`` and ``findings.txt``.

    A cause seen again is reported again with the same kind, severity and site (see
    :mod:`autodiff_trace.analysis.causes`); the files hold one record per cause, with
    its latest words and its occurrences (the passes and nodes) inside. Only findings
    are kept, so memory stays small however long the trace.
    """

    def __init__(self, out_dir: Union[str, os.PathLike]) -> None:
        self.out_dir = Path(out_dir)
        self.findings: List[Diagnostic] = []
        self.written: List[Path] = []

    def handle(self, event: Event) -> None:
        if event.kind == "diagnostic":
            self.findings.append(event)

    def handle_batch(self, first_seq: int, t: float, batch: list) -> None:
        """A captured batch holds no findings (:mod:`autodiff_trace.core.captured`): nothing to keep."""

    @property
    def causes(self) -> List[dict]:
        """One record per cause: finding, severity, site, message, hint, passes, nodes,
        names and occurrences (one per pass, with that pass's nodes)."""
        return group(self.findings)

    def close(self) -> None:
        causes = self.causes
        as_json, as_text = self.out_dir / "findings.json", self.out_dir / "findings.txt"
        self.written = []
        for path, text in ((as_json, json.dumps(causes, indent=2) + "\n"), (as_text, format_findings(causes))):
            try:
                self.out_dir.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8", errors="backslashreplace")
            except OSError as exc:
                raise cannot_write(f"the findings to {path}", exc) from None
            self.written.append(path)

    @property
    def errors(self) -> List[Diagnostic]:
        return [f for f in self.findings if f.severity == "error"]


def format_findings(causes: List[dict]) -> str:
    """One paragraph per cause: severity, kind, passes, where, the message and the fix."""
    if not causes:
        return "No findings: every gradient write looked as expected.\n"
    lines = []
    for c in causes:
        where = f" [{c['site']}]" if c["site"] else ""
        passes = [str(n) for n in c["passes"] if n]
        shown = f" (pass{'es' if len(passes) > 1 else ''} {', '.join(passes)})" if passes else ""
        lines.append(f"{c['severity'].upper()} {c['finding']}{shown}{where}\n"
                     f"  {c['message']}\n  fix: {c['hint']}\n")
    return "\n".join(lines)
