"""The findings files: every diagnostic of a trace, as JSON and as plain text."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import List, Union

from ..core.events import Diagnostic, Event, to_dict
from ._errors import cannot_write

__all__ = ["FindingsSink"]


class FindingsSink:
    """Keep the ``diagnostic`` events; on close write ``findings.json`` and ``findings.txt``.

    Only findings are kept, so memory stays small however long the trace.
    """

    def __init__(self, out_dir: Union[str, os.PathLike]) -> None:
        self.out_dir = Path(out_dir)
        self.findings: List[Diagnostic] = []
        self.written: List[Path] = []

    def handle(self, event: Event) -> None:
        if event.kind == "diagnostic":
            self.findings.append(event)

    def close(self) -> None:
        as_json, as_text = self.out_dir / "findings.json", self.out_dir / "findings.txt"
        self.written = []
        for path, text in ((as_json, json.dumps([to_dict(f) for f in self.findings], indent=2) + "\n"),
                           (as_text, format_findings(self.findings))):
            try:
                self.out_dir.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8", errors="backslashreplace")
            except OSError as exc:
                raise cannot_write(f"the findings to {path}", exc) from None
            self.written.append(path)

    @property
    def errors(self) -> List[Diagnostic]:
        return [f for f in self.findings if f.severity == "error"]


def format_findings(findings: List[Diagnostic]) -> str:
    """One paragraph per finding: severity, message, where, and the fix."""
    if not findings:
        return "No findings: every gradient write looked as expected.\n"
    lines = []
    for f in findings:
        where = f" [{f.site}]" if f.site else ""
        lines.append(f"{f.severity.upper()} {f.finding} (pass {f.pass_no}){where}\n"
                     f"  {f.message}\n  fix: {f.hint}\n")
    return "\n".join(lines)
